import Testing
import Weft

extension NetTest {
    /// `TCPStream.setBufferLimits(unread:queued:)` (issue 23, item 2).
    @Suite("Per-stream buffer limits")
    struct BufferLimitsTests {
        /// A runtime, an echo server on it and a stream connected to it.
        static func streamToEchoServer() throws -> (Runtime, TCPStream, TCPListener) {
            let (runtime, _) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            runtime.spawn(NetTest.acceptLoop(listener, serve: NetTest.echo))
            let stream = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address))).get().get()
            return (runtime, stream, listener)
        }

        @Test("a stream starts at 64 KiB both ways; limits outside 1 KiB...1 GiB, or set off the loop, are refused with a clear error")
        func defaultsAndBadLimits() throws {
            let (runtime, stream, listener) = try Self.streamToEchoServer()
            defer { stream.close(); listener.close(); withExtendedLifetime(runtime) {} }
            #expect(try stream.bufferLimits == (unread: 65_536, queued: 65_536))
            #expect(TCPStream.defaultBufferLimit == 65_536)
            for (unread, queued) in [(0, 65_536), (65_536, 1023), (1 << 31, 65_536), (-1, -1)] {
                #expect(throws: WeftError.self) { try stream.setBufferLimits(unread: unread, queued: queued) }
            }
            #expect(try stream.bufferLimits == (unread: 65_536, queued: 65_536), "a refused call changes nothing")
            try stream.setBufferLimits(unread: 4096, queued: 1 << 20)
            #expect(try stream.bufferLimits == (unread: 4096, queued: 1 << 20))
            let offLoop = ForeignThreadResult { () -> WeftError.Kind? in
                do throws(WeftError) {
                    try stream.setBufferLimits(unread: 4096, queued: 4096)
                    return nil
                } catch { return error.kind }
            }
            #expect(offLoop.value == .wrongThread)
        }

        @Test("4 MiB echoed through a stream limited to 1 KiB each way arrive whole and in order")
        func smallLimitsKeepEveryByte() throws {
            let (runtime, stream, listener) = try Self.streamToEchoServer()
            defer { stream.close(); listener.close() }
            try stream.setBufferLimits(unread: 1024, queued: 1024)
            let message = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let echoed = try runtime.block(on: timeoutFuture(.seconds(20), join(
                stream.writeAll(message).onSuccess { stream.shutdownFuture() }, stream.readToEnd()
            ).map { written, read in written.flatMap { read } })).get().get()
            #expect(echoed == message)
        }
    }
}

/// Runs `body` on a thread of its own and keeps its result.
private final class ForeignThreadResult<T: Sendable>: Sendable {
    let value: T
    init(_ body: @escaping @Sendable () -> T) {
        let box = Shared<T?>(nil)
        ForeignThread { box.update { $0 = body() } }.join()
        value = box.value!
    }
}
