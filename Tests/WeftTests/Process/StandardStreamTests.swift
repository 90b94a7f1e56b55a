import Glibc
import CLibUV
import Testing
@testable import Weft

/// The process's standard streams opened in this process. Descriptor 0 is
/// swapped for a pipe for the test's duration (no test reads standard input)
/// and put back after.
@Suite("Standard streams", .serialized)
struct StandardStreamTests {
    /// Runs `body` with descriptor 0 the read end of a new blocking pipe; the
    /// write end goes to `body`.
    static func withPipeAsStandardInput(_ body: (Int32) throws -> Void) throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        let saved = dup(0)
        try #require(saved >= 0)
        defer {
            dup2(saved, 0)
            close(saved)
            close(ends[0])
            close(ends[1])
        }
        try #require(dup2(ends[0], 0) == 0)
        try body(ends[1])
    }

    static func isNonBlocking(_ descriptor: Int32) -> Bool {
        fcntl(descriptor, F_GETFL) & O_NONBLOCK != 0
    }

    @Test("standard input on a pipe reads what is written to it; two streams on one pipe leave it non-blocking until the last closes, which makes it blocking again")
    func twoStreamsOnOnePipe() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        try Self.withPipeAsStandardInput { writer in
            #expect(!Self.isNonBlocking(0))
            let first = try StandardStream.input(runtime: runtime)
            let second = try StandardStream.input(runtime: runtime)
            #expect(first.kind == .pipe && second.kind == .pipe)
            #expect(Self.isNonBlocking(0))  // libuv's, on the shared description
            #expect(write(writer, "piped\n", 6) == 6)
            #expect(try runtime.block(on: timeoutFuture(.seconds(5), first.readFuture())).get().get() == Array("piped\n".utf8))
            first.close()
            #expect(Self.isNonBlocking(0), "the other stream still reads the pipe from its loop")
            second.close()
            second.close()  // idempotent: counted once
            #expect(!Self.isNonBlocking(0))
            #expect(fcntl(0, F_GETFD) != -1, "descriptor 0 stays open")
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a read of 0 bytes returns nothing at once, as a TCP stream's, with nothing written to standard input; a later read still gets the bytes")
    func readOfNothing() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        try Self.withPipeAsStandardInput { writer in
            let input = try StandardStream.input(runtime: runtime)
            defer { input.close() }
            let nothing = try runtime.block(on: timeoutFuture(.seconds(2), input.readFuture(upTo: 0)))
            #expect(try nothing.get().get() == [], "\(nothing)")
            #expect(write(writer, "later\n", 6) == 6)
            #expect(try runtime.block(on: timeoutFuture(.seconds(5), input.readFuture())).get().get() == Array("later\n".utf8))
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
