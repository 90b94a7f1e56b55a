import Testing
@testable import Weft

/// A listening socket that reports an error (libuv turns `POLLERR` into
/// `UV_EBADF` and stops the watcher): the listener records it and watches
/// again after a back-off instead of never accepting again.
@Suite("Listener: an error on the listening socket")
struct ListenerPollErrorTests {
    @Test("after an error on its socket a TCP listener records it, then accepts again within its back-off")
    func tcpListenerAcceptsAfterPollError() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        listener.acceptor.simulatePollError()
        #expect(listener.acceptErrorCount == 1)
        #expect(listener.lastAcceptError?.name == "EBADF")
        let (accepted, connected) = try runtime.block(on: timeoutFuture(.seconds(5), join(
            listener.acceptFuture(), TCPStream.connectFuture(to: try listener.localAddress)))).get()
        let server = try accepted.get()
        let client = try connected.get()
        #expect(try server.peerAddress == client.localAddress)
        for stream in [server, client] { stream.close() }
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("the same for a Unix listener, whose error is readable too")
    func unixListenerAcceptsAfterPollError() throws {
        try UnixSocketTests.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let path = directory + "/poll-error.sock"
            let listener = try UnixListener.bind(.path(path), runtime: runtime)
            listener.acceptor.simulatePollError()
            #expect(listener.acceptErrorCount == 1)
            #expect(listener.lastAcceptError?.name == "EBADF")
            let (accepted, connected) = try runtime.block(on: timeoutFuture(.seconds(5), join(
                listener.acceptFuture(), UnixStream.connectFuture(to: .path(path))))).get()
            for stream in [try accepted.get(), try connected.get()] { stream.close() }
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }
}
