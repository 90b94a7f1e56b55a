import Testing
import Weft

extension TimingSensitive {
    @Suite("TCP resource release")
    struct ResourceReleaseTests {
        @Test("a stream dropped mid-write releases everything: no handle beyond the baseline after a turn of the loop, and the queued bytes are freed")
        func droppedMidWrite() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            // A peer that never accepts, hence never reads.
            let peer = try RawSocket.listening(backlog: 16)
            defer { peer.close() }
            let address = try SocketAddress(host: "127.0.0.1", port: peer.port)

            // 64 MiB: the kernel takes a few MiB, the stream queues up to its
            // high-water mark in writes that can never complete, and the writeAll
            // waits for room. The test keeps the source bytes alive throughout,
            // so only what the stream holds can come and go.
            let big = [UInt8](repeating: 1, count: 64 << 20)
            let residentBefore = NetTest.residentBytes()
            let written = NetTest.Cell(false)
            let outcome = try runtime.block(on: select(
                either: TCPStream.connectFuture(to: address).onSuccess { stream in
                    stream.writeAll(big).map { written.value = true; return $0 }
                },
                or: sleepFuture(for: .milliseconds(200)).map { runtime.openHandleCount }
            ))
            // The write was still pending when the timer won: the select dropped
            // it, and with it the only reference to the stream.
            let handlesDuring = try #require(outcome.right)
            #expect(!written.value)
            #expect(handlesDuring == baseline + 1)

            try runtime.block(on: sleepFuture(for: .milliseconds(10)))
            #expect(runtime.openHandleCount == baseline)
            let growth = NetTest.residentBytes() - residentBefore
            #expect(growth < 8 << 20, "the queued bytes were freed (RSS grew by \(growth >> 20) MiB)")
            #expect(big.count == 64 << 20)
            // The writes queued on the dropped stream were cancelled too.
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("aborting a server task blocked in a read closes its connection; the client reads EOF")
        func abortedReader() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            let handler = runtime.spawn(listener.acceptFuture().onSuccess { stream in stream.readToEnd() })
            let client = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address))).get().get()
            try runtime.block(on: timeoutFuture(.seconds(10), client.writeAll(NetTest.bytes("unfinished")))).get().get()
            try runtime.block(on: sleepFuture(for: .milliseconds(10)))
            #expect(runtime.openHandleCount == baseline + 3, "listener, server end and client end")

            handler.abort()
            let afterAbort = try runtime.block(on: timeoutFuture(.seconds(10), client.readToEnd())).get()
            #expect(try afterAbort.get().isEmpty)
            #expect(runtime.openHandleCount == baseline + 2, "listener and client end")
            client.close()
            listener.close()
            #expect(runtime.openHandleCount == baseline)
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }
}
