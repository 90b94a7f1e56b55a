import Testing
@testable import Weft

/// A listener's sink (`StreamAcceptor.deliver(to:)`, what `LoopGroup.serve`
/// uses): connections handed over as they are accepted, no accept future.
@Suite("TCP listener: connections delivered as accepted")
struct AcceptSinkTests {
    @Test("the connections queued before the sink go to it at once, later ones as they are accepted (300: more than one readiness accepts), and a pending accept waits until close, then fails with .closed")
    func deliversEveryConnection() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        let connect = { (count: Int) throws -> [TCPStream] in
            let results = try runtime.block(on: timeoutFuture(.seconds(10), joinAll((0..<count).map { _ in
                TCPStream.connectFuture(to: address)
            }))).get()
            return results.compactMap { try? $0.get() }
        }

        var clients = try connect(3)
        #expect(clients.count == 3)
        try runtime.block(on: timeoutFuture(.seconds(10), NetTest.eventually { listener.acceptor.queuedCount == 3 })).get()
        let delivered = NetTest.Cell<[TCPStream]>([])
        listener.acceptor.deliver { delivered.value.append(TCPStream(connection: $0)) }
        #expect(delivered.value.count == 3, "the queued connections go to the sink when it is set")
        #expect(listener.acceptor.queuedCount == 0)

        let accept = runtime.spawn(listener.acceptFuture())
        clients += try connect(300)
        #expect(clients.count == 303)
        try runtime.block(on: timeoutFuture(.seconds(10), NetTest.eventually { delivered.value.count == 303 })).get()
        #expect(listener.acceptor.queuedCount == 0)

        // A delivered connection is an ordinary one.
        let (server, client) = (delivered.value[0], clients[0])
        let reply = try runtime.block(on: timeoutFuture(.seconds(10), server.writeAll(NetTest.bytes("x")).then { _ in
            client.readFuture()
        })).get()
        #expect(try reply.get() == NetTest.bytes("x"))

        listener.close()
        let accepted = try runtime.block(on: timeoutFuture(.seconds(10), accept)).get()
        #expect(try accepted.get().failure?.kind == .closed)
        for stream in delivered.value + clients { stream.close() }
        delivered.value = []
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
