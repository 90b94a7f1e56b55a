import Glibc
import Testing
import Weft

// Serialized with the other heavy tests: its large writes would disturb the
// RSS measurements of the backpressure tests.
extension TimingSensitive {
    @Suite("TCP closed streams")
    struct ClosedStreamTests {
        /// A runtime with an echo server, and a stream connected to it; the
        /// runtime's own handle count (for the final leak check) and the
        /// listener (to close at the end of the test) come along.
        static func connectedPair() throws -> (runtime: Runtime, stream: TCPStream, listener: TCPListener, baseline: Int) {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            runtime.spawn(NetTest.acceptLoop(listener, serve: NetTest.echo))
            let stream = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address))).get().get()
            return (runtime, stream, listener, baseline)
        }

        @Test("every operation on a closed stream yields .closed")
        func operationsAfterClose() throws {
            let (runtime, stream, listener, baseline) = try Self.connectedPair()
            let openBefore = runtime.openHandleCount
            #expect(!stream.isClosed)
            stream.close()
            #expect(stream.isClosed)
            #expect(runtime.openHandleCount == openBefore - 1)

            let read = try runtime.block(on: stream.readFuture())
            #expect(read.failure?.kind == .closed)
            #expect(read.failure?.operation == "read")
            #expect(try runtime.block(on: stream.readExact(1)).failure?.kind == .closed)
            #expect(try runtime.block(on: stream.readToEnd()).failure?.kind == .closed)
            let write = try runtime.block(on: stream.writeAll(NetTest.bytes("x")))
            #expect(write.failure?.kind == .closed)
            #expect(write.failure?.operation == "write")
            let flush = try runtime.block(on: stream.flushFuture())
            #expect(flush.failure?.kind == .closed)
            #expect(flush.failure?.operation == "flush")
            let shutdown = try runtime.block(on: stream.shutdownFuture())
            #expect(shutdown.failure?.kind == .closed)
            #expect(shutdown.failure?.operation == "shutdown")
            #expect(try runtime.block(on: copy(from: stream, to: stream)).failure?.kind == .closed)

            let synchronous: [(name: String, call: () throws -> Void)] = [
                ("setNoDelay", { try stream.setNoDelay(true) }),
                ("setKeepAlive", { try stream.setKeepAlive(true) }),
                ("localAddress", { _ = try stream.localAddress }),
                ("peerAddress", { _ = try stream.peerAddress }),
            ]
            for operation in synchronous {
                let error = try #require(throws: WeftError.self, "\(operation.name)") { try operation.call() }
                #expect(error.kind == .closed, "\(operation.name)")
                #expect("\(error)".contains("closed"), "\(operation.name)")
            }
            stream.close()  // idempotent
            #expect(runtime.openHandleCount == openBefore - 1)

            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("isClosed and flushMark read on another thread while the loop writes and closes the stream: isClosed turns true there once the loop closed it, and flushMark there is Int.max, a mark only an empty queue has passed (both read the loop's state unsynchronized)")
        func closedAndFlushMarkOffTheLoop() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            runtime.spawn(NetTest.acceptLoop(listener) { NetTest.Drain(reader: $0, body: { _ in }) })
            let stream = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address))).get().get()
            let seen = Shared<(closed: Bool, marks: Set<Int>)>((false, []))
            let watcher = ForeignThread {
                let deadline = ContinuousClock.now + .seconds(20)
                while ContinuousClock.now < deadline {
                    let (closed, mark) = (stream.isClosed, stream.flushMark)
                    seen.update { $0 = (closed, $0.marks.union([mark])) }
                    if closed { return }
                }
            }
            // More than the kernel takes at once, so some is queued and the loop counts it.
            let written = try runtime.block(on: timeoutFuture(.seconds(10),
                                                              stream.writeAll([UInt8](repeating: 7, count: 4 << 20)))).get()
            #expect(written.failure == nil)
            #expect(stream.flushMark > 0, "on the loop thread, the count of bytes queued")
            stream.close()
            watcher.join()
            #expect(seen.value.closed)
            #expect(seen.value.marks == [Int.max])

            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("closing a stream wakes its pending read with .closed")
        func closeWakesRead() throws {
            let (runtime, stream, listener, baseline) = try Self.connectedPair()
            // Nothing is sent, so the read stays pending until the close.
            let (read, _) = try runtime.block(on: timeoutFuture(.seconds(10), join(
                stream.readFuture(),
                sleepFuture(for: .milliseconds(20)).map { stream.close() }
            ))).get()
            #expect(read.failure?.kind == .closed)

            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("closing a stream wakes a write waiting for the peer with .closed")
        func closeWakesWrite() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            // A peer that never accepts, hence never reads: the write cannot finish.
            let peer = try RawSocket.listening(backlog: 16)
            defer { peer.close() }
            let address = try SocketAddress(host: "127.0.0.1", port: peer.port)
            let stream = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address))).get().get()
            let big = [UInt8](repeating: 7, count: 32 << 20)
            let (write, _) = try runtime.block(on: timeoutFuture(.seconds(10), join(
                stream.writeAll(big),
                sleepFuture(for: .milliseconds(50)).map { stream.close() }
            ))).get()
            #expect(write.failure?.kind == .closed)
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("a write whose bytes were all written succeeds though the stream is closed before it is polled again; a flush begun on the closed stream still fails")
        func writeWrittenBeforeTheClose() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            runtime.spawn(NetTest.acceptLoop(listener) { NetTest.Drain(reader: $0, body: { _ in }) })
            let stream = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address))).get().get()
            // More than the kernel takes at once, under the queue's limit: the
            // write accepts every byte at its first poll and waits for its queue.
            var write = stream.writeAll([UInt8](repeating: 7, count: 16 << 20))
            var flush: Flush<TCPStream>?
            // The write's result when polled after the close (nil: pending).
            let afterClose: Result<Void, WeftError>?? = try runtime.block(on: timeoutFuture(.seconds(10), pollFn { context in
                if flush == nil {
                    guard (try? stream.setBufferLimits(unread: 64 << 10, queued: 64 << 20)) != nil else { return .ready(nil) }
                    // Not waiting at its first poll: nothing to test (nil).
                    guard case .pending = write.poll(&context) else { return .ready(nil) }
                    flush = stream.flushFuture()  // the same mark: ready once the write's bytes are written
                }
                guard case .ready(let flushed) = flush!.poll(&context) else { return .pending }
                guard case .success = flushed else { return .ready(nil) }
                stream.close()  // before the write's future is polled again
                guard case .ready(let written) = write.poll(&context) else { return .ready(.some(nil)) }
                return .ready(written)
            })).get()
            let written = try #require(afterClose, "the write waited for its queue and the flush beside it succeeded")
            let result = try #require(written, "the write, polled after the close, is ready")
            #expect(result.failure == nil, "its bytes reached the OS before the close")

            let flushAfterClose = try runtime.block(on: stream.flushFuture())
            #expect(flushAfterClose.failure?.kind == .closed)
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("tuning options on an open stream sets them on its socket")
        func options() throws {
            let (runtime, stream, listener, baseline) = try Self.connectedPair()
            let socket = try #require(SocketProbe.descriptor(localPort: try stream.localAddress.port,
                                                             peerPort: try stream.peerAddress.port))
            try stream.setNoDelay(true)
            #expect(SocketProbe.option(socket, Int32(IPPROTO_TCP), TCP_NODELAY) == 1)
            try stream.setNoDelay(false)
            #expect(SocketProbe.option(socket, Int32(IPPROTO_TCP), TCP_NODELAY) == 0)
            try stream.setKeepAlive(true, delay: .seconds(30))
            #expect(SocketProbe.option(socket, SOL_SOCKET, SO_KEEPALIVE) == 1)
            #expect(SocketProbe.option(socket, Int32(IPPROTO_TCP), TCP_KEEPIDLE) == 30)
            try stream.setKeepAlive(false)
            #expect(SocketProbe.option(socket, SOL_SOCKET, SO_KEEPALIVE) == 0)

            stream.close()
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }
}
