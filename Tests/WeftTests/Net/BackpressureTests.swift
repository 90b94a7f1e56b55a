import Testing
import Weft

extension TimingSensitive {
    @Suite("TCP backpressure")
    struct BackpressureTests {
        /// What the server tries to send: 100 MB.
        static let total = 100_000_000
        static let chunkSize = 64 * 1024
        /// The client reads at most 64 KiB every 5 ms, 400 times (a couple of
        /// seconds, at most ~26 MB): far slower than the server can write.
        static let clientReads = 400
        static let allowedGrowth = 16 << 20

        struct Measurement {
            var residentBefore = 0
            var residentPeak = 0
            var received = 0
            var serverAccepted = 0
            var growth: Int { residentPeak - residentBefore }
        }

        /// Runs a server that writes `total` bytes (in 64 KiB chunks, or as one
        /// `writeAll` of a buffer allocated before the measurement starts) to a
        /// client that reads slowly, sampling this process's RSS as it goes.
        static func measure(chunked: Bool) throws -> Measurement {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            let chunk = [UInt8](repeating: 0xAB, count: chunkSize)
            let whole = chunked ? [] : [UInt8](repeating: 0xCD, count: total)
            let accepted = NetTest.Cell(0)
            // The baseline: everything the test itself needs is allocated; the
            // server has not written a byte yet.
            var measurement = Measurement()
            measurement.residentBefore = NetTest.residentBytes()

            let server = runtime.spawn(listener.acceptFuture().onSuccess { stream in
                if chunked {
                    return NetTest.steps((total + chunkSize - 1) / chunkSize) { _ in
                        stream.writeAll(chunk).map { result in
                            if result.isSuccess { accepted.value += chunkSize }
                            return result
                        }
                    }.boxed()
                }
                return stream.writeAll(whole).boxed()
            })
            let client = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address))).get().get()
            // Let the server start writing and fill whatever it fills at once.
            try runtime.block(on: sleepFuture(for: .milliseconds(50)))

            measurement.residentPeak = NetTest.residentBytes()
            let state = NetTest.Cell(measurement)
            let reading = NetTest.steps(clientReads) { _ in
                client.readFuture(upTo: 64 * 1024).onSuccess { bytes in
                    state.value.received += bytes.count
                    state.value.residentPeak = max(state.value.residentPeak, NetTest.residentBytes())
                    return sleepFuture(for: .milliseconds(5)).map { Result<Void, WeftError>.success(()) }
                }
            }
            try runtime.block(on: timeoutFuture(.seconds(20), reading)).get().get()
            state.value.serverAccepted = accepted.value

            // Tear down: the server task is dropped mid-write, the client closed.
            server.abort()
            client.close()
            try runtime.block(on: sleepFuture(for: .milliseconds(10)))
            #expect(runtime.openHandleCount == baseline + 1, "only the listener is left")
            #expect(whole.count == (chunked ? 0 : total))
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
            return state.value
        }

        @Test("a server writing 100 MB in 64 KiB chunks to a client that reads slowly keeps its memory growth under 16 MiB")
        func chunkedWriterIsHeldBack() throws {
            let result = try Self.measure(chunked: true)
            #expect(result.received >= Self.clientReads * 1024, "the client made progress")
            #expect(result.growth < Self.allowedGrowth, "RSS grew by \(result.growth >> 20) MiB")
            // The writes wait for the reader: what was accepted beyond what was
            // read is bounded by the socket buffers and the 1 MiB write queue.
            #expect(result.serverAccepted < Self.total)
            #expect(result.serverAccepted - result.received < 32 << 20,
                    "server accepted \(result.serverAccepted >> 20) MiB, client read \(result.received >> 20) MiB")
        }

        // Before the fix in 2d5f387 (pollWrite copied the whole unsent remainder
        // into one queued write) RSS grew by ~92 MiB here.
        @Test("a server writing 100 MB with a single writeAll to a client that reads slowly keeps its memory growth under 16 MiB")
        func singleWriteIsHeldBack() throws {
            let result = try Self.measure(chunked: false)
            #expect(result.received >= Self.clientReads * 1024, "the client made progress")
            #expect(result.growth < Self.allowedGrowth, "RSS grew by \(result.growth >> 20) MiB")
        }
    }
}
