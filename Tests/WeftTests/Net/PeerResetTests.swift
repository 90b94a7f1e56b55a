import Testing
import Weft

// Serialized with the other heavy tests: its large writes would disturb the
// RSS measurements of the backpressure tests.
extension TimingSensitive {
    @Suite("TCP peer reset")
    struct PeerResetTests {
        @Test("a peer reset during a pending read yields ECONNRESET as an error value")
        func resetDuringRead() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let port = try listener.localAddress.port

            // The raw peer connects, waits for the server's go (sent once the
            // server's read is pending), then closes with SO_LINGER 0: an RST.
            let peer = NetTest.PeerThread {
                guard let raw = try? RawSocket.connected(to: port) else { return }
                raw.setReceiveTimeout(seconds: 10)
                _ = raw.receive(upTo: 1)
                raw.resetAndClose()
            }
            defer { peer.join() }

            let readResult = try runtime.block(on: timeoutFuture(.seconds(10), listener.acceptFuture().onSuccess { stream in
                // The read is polled (and pending) before the go goes out.
                join(stream.readFuture(), stream.writeAll(NetTest.bytes("!")))
                    .map { read, wrote in wrote.map { read } }
            })).get()
            let read = try readResult.get()
            let error = try #require(read.failure, "expected ECONNRESET, got \(read)")
            #expect(error.name == "ECONNRESET")
            #expect(error.operation == "read")
            #expect("\(error)".contains("ECONNRESET"))
            #expect(peer.join())

            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("a shutdown after the peer reset the connection fails with ENOTCONN, whether or not a read saw the reset first",
              arguments: [false, true])
        func shutdownAfterReset(readFirst: Bool) throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let raw = try RawSocket.connected(to: try listener.localAddress.port)
            let stream = try runtime.block(on: timeoutFuture(.seconds(10), listener.acceptFuture())).get().get()
            raw.resetAndClose()
            try runtime.block(on: sleepFuture(for: .milliseconds(50)))  // the reset arrives
            if readFirst {
                #expect(try runtime.block(on: stream.readFuture()).failure?.name == "ECONNRESET")
            }
            let shutdown = try runtime.block(on: timeoutFuture(.seconds(10), stream.shutdownFuture())).get()
            #expect(shutdown.failure?.code == .notConnected, "\(shutdown)")
            #expect(shutdown.failure?.operation == "shutdown")
            stream.close()
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("a peer reset during a large write yields ECONNRESET or EPIPE as an error value, and later writes fail too")
        func resetDuringWrite() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let port = try listener.localAddress.port

            // The raw peer reads the first bytes (the write is under way by then),
            // then resets without reading the rest.
            let peer = NetTest.PeerThread {
                guard let raw = try? RawSocket.connected(to: port) else { return }
                raw.setReceiveTimeout(seconds: 10)
                _ = raw.receive(upTo: 1024)
                raw.resetAndClose()
            }
            defer { peer.join() }

            // 32 MiB: far more than the socket buffers hold while the peer is not reading.
            let big = [UInt8](repeating: 0x5A, count: 32 << 20)
            let (first, second) = try runtime.block(on: timeoutFuture(.seconds(10), listener.acceptFuture().onSuccess { stream in
                stream.writeAll(big).then { first in
                    stream.writeAll(NetTest.bytes("after the reset")).map { second in .success((first, second)) }
                }
            })).get().get()
            let error = try #require(first.failure, "expected the write to fail, got \(first)")
            #expect(["ECONNRESET", "EPIPE"].contains(error.name), "got \(error)")
            #expect(second.failure != nil)
            #expect(peer.join())

            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }
}
