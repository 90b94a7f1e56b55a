import Glibc
import Testing
@testable import Weft

/// What `LoopThread(name:)` and `LoopGroup(loops:)` throw when the thread
/// cannot be made: the process or the system is out of threads, or of memory
/// for a stack, which a test cannot bring about without starving the tests
/// beside it, so the error is checked as the initializer makes it.
@Suite("A loop thread that cannot start")
struct ThreadStartErrorTests {
    @Test("a failed pthread_create is the libuv error of its errno (EAGAIN: .libuv, named, with its message), naming the loop thread; it was .invalidArgument with the errno in its detail")
    func threadStartFailureIsTheOSError() {
        let error = ThreadStartError(code: EAGAIN).weftError(operation: "LoopThread(name: \"weft-loop\")")
        #expect(error.kind == .libuv(code: -EAGAIN))
        #expect(error.name == "EAGAIN")
        #expect(error.description == "LoopThread(name: \"weft-loop\"): EAGAIN (resource temporarily unavailable); pthread_create failed")
    }
}
