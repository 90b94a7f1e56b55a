import Testing
import Weft

@Suite("TCP endpoint addresses")
struct AddressAgreementTests {
    @Test("localAddress and peerAddress agree between the two ends")
    func endsAgree() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let listening = try listener.localAddress
        let (accepted, connected) = try runtime.block(on: timeoutFuture(.seconds(10), join(
            listener.acceptFuture(), TCPStream.connectFuture(to: listening)
        ))).get()
        let server = try accepted.get()
        let client = try connected.get()

        #expect(try client.peerAddress == listening)
        #expect(try server.localAddress == listening)
        #expect(try client.localAddress == server.peerAddress)
        #expect(try client.localAddress.host == "127.0.0.1")
        #expect(try client.localAddress.port != listening.port)
        #expect(try server.peerAddress.description == "127.0.0.1:\(client.localAddress.port)")

        client.close()
        server.close()
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
