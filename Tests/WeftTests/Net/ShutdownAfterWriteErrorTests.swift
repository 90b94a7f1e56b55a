@testable import Weft
import Glibc
import Testing

@Suite("A shutdown queued behind writes that fail")
struct ShutdownAfterWriteErrorTests {
    /// An audit said libuv 1.44 fails only the head of its write queue on an
    /// error and runs a shutdown only once the queue is empty, so the shutdown
    /// would wait for ever behind the write left queued. Measured, it does
    /// not: every queued write fails, then the shutdown runs (ENOTCONN). Kept
    /// so that a change in libuv or in Weft's write queue that brings the
    /// hang shows here.
    @Test("a shutdown waiting behind queued writes ends with an error when the peer resets with two of them still queued, not waiting for ever")
    func shutdownFailsWhenAQueuedWriteFails() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let client = try RawSocket.connected(to: try listener.localAddress.port)
        client.setReceiveTimeout(seconds: 10)
        let server = try runtime.block(on: timeoutFuture(.seconds(10), listener.acceptFuture())).get().get()
        try server.setBufferLimits(unread: 64 * 1024, queued: 64 << 20)
        try server.setOptions(SocketOptions(sendBufferSize: 4096))

        let chunk = [UInt8](repeating: 7, count: 1 << 20)
        /// Writes all of `chunk` into the stream's queue (the limit is far above it).
        func queue() throws {
            let accepted = try runtime.block(on: pollFn { context -> Poll<Int> in
                guard case .ready(.success(let count)) = chunk.withUnsafeBytes({ server.pollWrite(&context, $0) }) else {
                    return .ready(-1)
                }
                return .ready(count)
            })
            #expect(accepted == chunk.count)
        }
        try queue()  // A
        // The shutdown's first poll sets its flush mark: the end of A.
        var shutdown = server.shutdownFuture()
        let first = try runtime.block(on: pollFn { context in .ready(shutdown.poll(&context)) })
        #expect(!first.isReady)
        try queue()  // B
        try queue()  // C: still queued once B fails
        let waiting = runtime.spawn(shutdown)

        // The client reads A alone; then the shutdown is submitted, behind B and C.
        let readA = AtomicCounter()
        let reader = ForeignThread {
            var left = chunk.count
            while left > 0 {
                let count = client.receive(upTo: min(left, 64 * 1024))
                if count <= 0 { return }
                left -= count
            }
            readA.increment()
        }
        let submitted = try runtime.block(on: timeoutFuture(.seconds(10), NetTest.eventually {
            readA.value == 1 && server.connection.shutdownOperation != nil
        }))
        try submitted.get()
        reader.join()
        client.resetAndClose()  // B fails, C stays queued

        let outcome = try runtime.block(on: timeoutFuture(.seconds(5), waiting))
        guard case .success(.success(let shutDown)) = outcome else {
            Issue.record("the shutdown did not end within 5 s of the failed write: \(outcome)")
            server.close()
            listener.close()
            return
        }
        #expect(shutDown.failure != nil, "the shutdown succeeded over writes that failed")
        #expect(server.connection.queuedWriteBytes == 0, "a write is still queued")
        server.close()
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
