import CLibUV
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

/// An accept that fails for the listener's own reason (the kernel out of
/// memory or buffers) leaves the connection waiting, and the socket readable:
/// the listener backs off instead of trying again at once for as long as the
/// failure lasts.
@Suite("Listener: an accept that fails")
struct ListenerAcceptFailureTests {
    @Test("accepts failing with ENOBUFS (or a security policy's EPERM) are tried again after the back-off, not at once (a few failures in 250 ms, not thousands), and the waiting connection is accepted once they stop",
          arguments: [UV_ENOBUFS.rawValue, UV_EPERM.rawValue])
    func backsOffOnListenerErrors(code: Int32) throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        listener.acceptor.simulatedAcceptFailures = (code, 1_000_000)
        let client = try runtime.block(on: TCPStream.connectFuture(to: try listener.localAddress)).get()
        try runtime.block(on: sleepFuture(for: .milliseconds(250)))
        // One failure when the connection arrives, then one per back-off.
        let failures = listener.acceptErrorCount
        #expect((1...(250 / Int(StreamAcceptor.backOffMilliseconds) + 2)).contains(failures))
        #expect(listener.lastAcceptError?.code == WeftError(uvCode: code, operation: "").code)
        #expect(listener.lastAcceptError?.operation.hasPrefix("accept on 127.0.0.1:") == true)

        listener.acceptor.simulatedAcceptFailures = (0, 0)
        let server = try runtime.block(on: timeoutFuture(.seconds(5), listener.acceptFuture())).get().get()
        #expect(try server.peerAddress == client.localAddress)
        #expect(listener.acceptErrorCount == failures)
        for stream in [server, client] { stream.close() }
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("an accept that fails with an error of its connection (EPROTO) is counted without a back-off, and the waiting connection is accepted")
    func goesOnAfterConnectionErrors() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        listener.acceptor.simulatedAcceptFailures = (UV_EPROTO.rawValue, 1)
        let client = try runtime.block(on: TCPStream.connectFuture(to: try listener.localAddress)).get()
        let server = try runtime.block(on: timeoutFuture(.seconds(5), listener.acceptFuture())).get().get()
        #expect(listener.acceptErrorCount == 1)
        #expect(listener.lastAcceptError?.name == "EPROTO")
        #expect(!listener.acceptor.isBackingOff, "an error of one connection does not stop the listener")
        for stream in [server, client] { stream.close() }
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("errors of a connection that leave the connection waiting (as a simulated one does) are tried at most acceptQueueLimit times per readiness: the loop runs on between them (one readiness took all 5,000,000)")
    func connectionErrorsDoNotHoldTheLoop() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        listener.acceptor.simulatedAcceptFailures = (UV_EPROTO.rawValue, 5_000_000)
        let client = try runtime.block(on: TCPStream.connectFuture(to: try listener.localAddress)).get()
        try runtime.block(on: sleepFuture(for: .milliseconds(20)))
        #expect(listener.acceptErrorCount < 5_000_000)
        listener.acceptor.simulatedAcceptFailures = (0, 0)
        let server = try runtime.block(on: timeoutFuture(.seconds(5), listener.acceptFuture())).get().get()
        for stream in [server, client] { stream.close() }
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("out of descriptors, a listener sheds at most acceptQueueLimit waiting connections per readiness and lets the loop run, then accepts the rest once descriptors are back (it shed until none was left waiting: 400 at once here, and clients connecting as fast as it closed them held the loop for ever)")
    func sheddingIsBoundedPerReadiness() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let port = try listener.localAddress.port
        let clients = try (0..<400).map { _ in try RawSocket.connected(to: port) }
        defer { for client in clients { client.close() } }
        listener.acceptor.simulatedAcceptFailures = (UV_EMFILE.rawValue, 1)
        let shedBefore = runtime.statistics.connectionsShed
        try runtime.block(on: sleepFuture(for: .milliseconds(20)))
        let shed = runtime.statistics.connectionsShed - shedBefore
        #expect(shed > 0 && shed <= StreamAcceptor.acceptQueueLimit, "shed \(shed) in one readiness")
        let server = try runtime.block(on: timeoutFuture(.seconds(5), listener.acceptFuture())).get().get()
        server.close()
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
