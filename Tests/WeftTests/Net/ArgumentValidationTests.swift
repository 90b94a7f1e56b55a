import Testing
import Weft

/// Invariant 8: nothing a caller passes makes Weft trap; bad arguments come
/// back as `.invalidArgument` error values.
@Suite("TCP argument validation")
struct ArgumentValidationTests {
    @Test("a listen backlog of zero or less is rejected with .invalidArgument naming the address")
    func badBacklog() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        for backlog in [0, -1] {
            let error = try #require(throws: WeftError.self) {
                _ = try TCPListener.bind(NetTest.loopbackAnyPort(), backlog: backlog, runtime: runtime)
            }
            #expect(error.kind == .invalidArgument)
            #expect("\(error)".contains("127.0.0.1:0"))
            #expect(error.detail.contains("\(backlog)"))
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("connecting to port 0 fails as an error value")
    func connectToPortZero() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let outcome = try runtime.block(on: timeoutFuture(.seconds(5), TCPStream.connectFuture(to: SocketAddress("127.0.0.1:0")))).get()
        #expect(outcome.failure?.name != nil, "a libuv error, e.g. ECONNREFUSED")
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    // Both trapped before 2d5f387 (`prefix` of a negative length; an array of
    // negative count).
    @Test("a negative length for read(upTo:) or readExact fails with .invalidArgument instead of trapping")
    func negativeLengths() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        runtime.spawn(listener.acceptFuture().onSuccess { stream in stream.writeAll([1, 2, 3]) })
        let stream = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address))).get().get()
        let read = try runtime.block(on: timeoutFuture(.seconds(10), stream.readFuture(upTo: -1))).get()
        #expect(read.failure?.kind == .invalidArgument)
        let exact = try runtime.block(on: timeoutFuture(.seconds(10), stream.readExact(-1))).get()
        #expect(exact.failure?.kind == .invalidArgument)

        stream.close()
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("read(upTo: 0) returns no bytes at once, with nothing sent, as a read into an empty buffer does, and the bytes sent later are still read")
    func zeroLengthRead() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let client = try RawSocket.connected(to: try listener.localAddress.port)
        defer { client.close() }
        let stream = try runtime.block(on: timeoutFuture(.seconds(10), listener.acceptFuture())).get().get()
        // Waited for data before: with nothing sent it timed out.
        let empty = try runtime.block(on: timeoutFuture(.seconds(2), stream.readFuture(upTo: 0))).get()
        #expect(try empty.get() == [])
        // A poll-level read into an empty buffer (as generic AsyncRead code
        // makes) waited too, then said 0, end of stream, once bytes came.
        let none = try runtime.block(on: timeoutFuture(.seconds(2), pollFn { context in
            stream.pollRead(&context, into: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        })).get()
        #expect(try none.get() == 0)
        client.send([4, 5])
        let bytes = try runtime.block(on: timeoutFuture(.seconds(10), stream.readExact(2))).get()
        #expect(try bytes.get() == [4, 5])
        stream.close()
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
