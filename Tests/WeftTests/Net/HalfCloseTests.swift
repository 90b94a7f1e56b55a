import Testing
import Weft

@Suite("TCP half-close")
struct HalfCloseTests {
    @Test("after the client shuts down writing, the server reads EOF, can still reply, and the client reads the reply then EOF")
    func halfClose() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        let request = NetTest.bytes("the whole request")
        let reply = NetTest.bytes("a reply sent after the request ended")

        // The server reads to end of stream (which needs the client's FIN), then
        // writes its reply on the same connection and shuts down in turn.
        let serverSaw = NetTest.Cell<[UInt8]>([])
        let server = listener.acceptFuture().onSuccess { stream in
            stream.readToEnd().onSuccess { received in
                serverSaw.value = received
                return stream.writeAll(reply).onSuccess { stream.shutdownFuture() }
            }
        }
        // The client writes, half-closes, then reads everything the server sends.
        let client = TCPStream.connectFuture(to: address).onSuccess { stream in
            stream.writeAll(request)
                .onSuccess { stream.shutdownFuture() }
                .onSuccess { stream.readFuture(upTo: 1024) }
                .onSuccess { first in stream.readToEnd().map { $0.map { first + $0 } } }
                .onSuccess { received in
                    // After EOF, reading again still yields EOF (empty).
                    stream.readFuture().map { $0.map { (received, $0) } }
                }
        }
        let (serverResult, clientResult) = try runtime.block(on: timeoutFuture(.seconds(10), join(server, client))).get()
        try serverResult.get()
        let (received, afterEnd) = try clientResult.get()
        #expect(serverSaw.value == request)
        #expect(received == reply)
        #expect(afterEnd.isEmpty)

        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("writing after shutdown fails with .closed, while reading still works")
    func writeAfterShutdown() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        runtime.spawn(NetTest.acceptLoop(listener, serve: NetTest.echo))

        let outcome = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address).onSuccess { stream in
            stream.writeAll(NetTest.bytes("echo me"))
                .onSuccess { stream.shutdownFuture() }
                .then { shut in
                    stream.writeAll(NetTest.bytes("too late")).map { late in (shut, late) }
                }
                .then { shut, late in
                    stream.readToEnd().map { echoed in Result<_, WeftError>.success((shut, late, echoed)) }
                }
        })).get()
        let (shut, late, echoed) = try outcome.get()
        try shut.get()
        #expect(late.failure?.kind == .closed)
        #expect(late.failure?.operation == "write")
        #expect(try echoed.get() == NetTest.bytes("echo me"))

        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
