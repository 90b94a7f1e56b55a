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

        /// A runtime, a client stream and the server's end of it, which nobody
        /// reads; 64 KiB socket buffers both ways, so the kernel holds little of
        /// what the client writes (loopback's own grow to 32 MiB).
        static func pairWithSmallSocketBuffers() throws -> (Runtime, client: TCPStream, server: TCPStream, TCPListener) {
            let (runtime, _) = try NetTest.runtimeWithHandleBaseline()
            let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"),
                                                options: SocketOptions(receiveBufferSize: 64 * 1024), runtime: runtime)
            let address = try listener.localAddress
            let (connected, accepted) = try runtime.block(on: timeoutFuture(.seconds(10), join(
                TCPStream.connectFuture(to: address), listener.acceptFuture()))).get()
            let client = try connected.get()
            try client.setOptions(SocketOptions(sendBufferSize: 64 * 1024))
            return (runtime, client, try accepted.get(), listener)
        }

        /// Ready once `stream` has accepted every byte of `bytes` (written or
        /// queued), without waiting for its queue to drain.
        static func queueAll(_ bytes: [UInt8], on stream: TCPStream) -> PollFn<Result<Void, WeftError>> {
            var accepted = 0
            return pollFn { context in
                while accepted < bytes.count {
                    switch bytes[accepted...].withUnsafeBytes({ stream.pollWrite(&context, $0) }) {
                    case .pending: return .pending
                    case .ready(.failure(let error)): return .ready(.failure(error))
                    case .ready(.success(let count)): accepted += count
                    }
                }
                return .ready(.success(()))
            }
        }

        @Test("a flush waiting when the queued limit is lowered under what is queued returns once its own bytes are written (it waited for the queue to fall under the new limit)")
        func flushAfterLimitLowered() throws {
            let (runtime, client, server, listener) = try Self.pairWithSmallSocketBuffers()
            defer { client.close(); server.close(); listener.close() }
            try client.setBufferLimits(unread: 65_536, queued: 8 << 20)
            let first = [UInt8](repeating: 1, count: 1 << 20)
            try runtime.block(on: Self.queueAll(first, on: client)).get()
            let mark = client.flushMark
            // Queued behind the flush's bytes: far more than the socket buffers take.
            try runtime.block(on: Self.queueAll([UInt8](repeating: 2, count: 2 << 20), on: client)).get()
            try client.setBufferLimits(unread: 65_536, queued: 1024)
            // Each in a task of its own, so that only its own wakes poll the flush.
            let flushed = NetTest.Cell<Result<Void, WeftError>?>(nil)
            runtime.spawn(pollFn { client.pollFlush(&$0, through: mark) }.map { flushed.value = $0 })
            // The server reads the flush's bytes, then no more.
            let read = NetTest.Cell<Result<[UInt8], WeftError>?>(nil)
            runtime.spawn(server.readExact(first.count).map { read.value = $0 })
            // 20 s: the bug waits for ever, and a loaded run under ThreadSanitizer took over 5 s.
            let waited = try runtime.block(on: timeoutFuture(.seconds(20), NetTest.eventually { flushed.value != nil && read.value != nil }))
            #expect(waited.isSuccess, "the flush still waited 20 s after the server had read its bytes")
            #expect(flushed.value.map { $0.failure == nil } == true)
            #expect(try read.value?.get() == first)
        }

        @Test("a write waiting for room in the queue goes on when the queued limit is raised (it waited for a write to complete, which never came while the peer did not read)")
        func writeAfterLimitRaised() throws {
            let (runtime, client, server, listener) = try Self.pairWithSmallSocketBuffers()
            defer { client.close(); server.close(); listener.close() }
            // At the default 64 KiB limit, most of it waits for room, in a task of
            // its own, so that only its own wakes poll it.
            let queued = NetTest.Cell<Result<Void, WeftError>?>(nil)
            runtime.spawn(Self.queueAll([UInt8](repeating: 3, count: 1 << 20), on: client).map { queued.value = $0 })
            try runtime.block(on: sleepFuture(for: .milliseconds(50)))
            #expect(queued.value == nil, "the write did not wait")
            try client.setBufferLimits(unread: 65_536, queued: 8 << 20)
            let waited = try runtime.block(on: timeoutFuture(.seconds(5), NetTest.eventually { queued.value != nil }))
            #expect(waited.isSuccess, "the write still waited for room 5 s after the limit was raised")
            #expect(queued.value.map { $0.failure == nil } == true)
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
