import Glibc
import Testing
@testable import Weft

@Suite("Handles closed after their runtime shut down")
struct LateCloseTests {
    @Test("a stream with writes queued in libuv, dropped on another thread after its runtime shut down, lets its loop go (the queued writes kept the loop alive: nobody ran it again to cancel them, and the loop leaked with its descriptors)")
    func streamWithQueuedWritesLetsItsLoopGo() throws {
        weak var loop: EventLoop?
        try {
            let runtime = try Runtime()
            loop = runtime.loop
            let listener = try NetTest.bindLoopback(runtime)
            let client = try RawSocket.connected(to: try listener.localAddress.port)  // never reads
            defer { client.close() }
            let server = try runtime.block(on: timeoutFuture(.seconds(5), listener.acceptFuture())).get().get()
            try server.setBufferLimits(unread: 64 * 1024, queued: 64 << 20)
            try server.setOptions(SocketOptions(sendBufferSize: 4096))
            let chunk = [UInt8](repeating: 7, count: 4 << 20)
            let accepted = try runtime.block(on: pollFn { context -> Poll<Int> in
                guard case .ready(.success(let count)) = chunk.withUnsafeBytes({ server.pollWrite(&context, $0) }) else {
                    return .ready(-1)
                }
                return .ready(count)
            })
            #expect(accepted == chunk.count)
            #expect(server.connection.queuedWriteBytes > 0, "nothing left queued in libuv")
            listener.close()
            try runtime.shutdown()
            let handover = SharedBox<TCPStream?>(server)
            #expect(returnsOnAThreadOfItsOwn(within: .seconds(10)) { handover.set(nil) })
        }()
        // Freed, the loop closed its descriptors (the suites run in parallel:
        // a count of this process's descriptors would not show four).
        #expect(loop == nil, "the loop was not freed")
    }
}
