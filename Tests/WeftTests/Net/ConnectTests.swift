import CLibUV
import Testing
import Weft

@Suite("TCP connect")
struct ConnectTests {
    @Test("a refused connection fails with ECONNREFUSED naming the address")
    func refused() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        // A bound socket that does not listen keeps the port ours and refuses connections.
        let raw = try RawSocket.bound()
        defer { raw.close() }
        let address = try SocketAddress(host: "127.0.0.1", port: raw.port)

        let outcome = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address))).get()
        let error = try #require(outcome.failure)
        #expect(error.name == "ECONNREFUSED")
        guard case .libuv = error.kind else { Issue.record("not a libuv error: \(error)"); return }
        #expect(error.message == "connection refused")
        #expect(error.operation == "connect \(address)")
        #expect("\(error)" == "connect 127.0.0.1:\(raw.port): ECONNREFUSED (connection refused)")
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a connect that succeeds within its timeout yields a working stream")
    func connectWithinTimeout() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        runtime.spawn(NetTest.acceptLoop(listener, serve: NetTest.echo))

        let connected = try runtime.block(on: timeoutFuture(.seconds(10), timeoutFuture(.seconds(5), TCPStream.connectFuture(to: address)))).get()
        let stream = try connected.get().get()
        let echoed = try runtime.block(on: timeoutFuture(.seconds(10), stream.writeAll(NetTest.bytes("hi")).onSuccess { stream.readExact(2) })).get()
        #expect(try echoed.get() == NetTest.bytes("hi"))
        #expect(runtime.pendingTimerCount == 0)

        stream.close()
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("connect composes with timeout: a connect that cannot complete is dropped at the limit and leaves no handle open")
    func connectTimesOut() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()

        // A listener whose accept queue is full drops further SYNs, so a
        // connect to it stays in progress (the kernel keeps retrying).
        let full = try RawSocket.listening(backlog: 1)
        defer { full.close() }
        let fillers = try (0..<8).map { _ in try RawSocket.connecting(to: full.port) }
        defer { fillers.forEach { $0.close() } }
        try runtime.block(on: sleepFuture(for: .milliseconds(50)))

        let address = try SocketAddress(host: "127.0.0.1", port: full.port)
        let start = ContinuousClock.now
        let (outcome, handlesDuring) = try runtime.block(on: timeoutFuture(.seconds(10),
            // The count is taken two polls after the connect opened its socket,
            // with no loop turn between: a sample on a timer, and the limit,
            // could come due together on a loaded machine, the connect dropped first.
            join(lazy { timeoutFuture(.milliseconds(200), TCPStream.connectFuture(to: address)) },
                 yields(2).map { runtime.openHandleCount })
        )).get()
        let elapsed = ContinuousClock.now - start
        #expect(handlesDuring == baseline + 1, "the connecting socket is open while the connect is pending")
        switch outcome {
        case .success(let connected):
            Issue.record("expected the connect to time out, got \(connected)")
        case .failure(let timedOut):
            #expect(timedOut.limit == .milliseconds(200))
        }
        #expect(elapsed >= .milliseconds(200))
        #expect(elapsed < .seconds(5))
        try runtime.block(on: yieldNow())
        #expect(runtime.openHandleCount == baseline)
        #expect(runtime.pendingTimerCount == 0)
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("connect(host: \"localhost\", port:) resolves the name and connects")
    func connectByName() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let port = try listener.localAddress.port
        runtime.spawn(NetTest.acceptLoop(listener, serve: NetTest.echo))

        // localhost may resolve to ::1 first, where nothing listens: the connect
        // moves on to 127.0.0.1.
        let (peer, echoed) = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(host: "localhost", port: port).onSuccess { stream in
            stream.writeAll(NetTest.bytes("by name")).onSuccess { stream.readExact(7) }.map { echoed in
                echoed.flatMap { bytes in Result { () throws(WeftError) in try (stream.peerAddress, bytes) } }
            }
        })).get().get()
        #expect(peer.host == "127.0.0.1")
        #expect(peer.port == port)
        #expect(echoed == NetTest.bytes("by name"))

        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("resolve(host: \"localhost\", port:) yields loopback addresses carrying the port")
    func resolveLocalhost() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let addresses = try runtime.block(on: timeoutFuture(.seconds(10), resolveFuture(host: "localhost", port: 8080))).get().get()
        #expect(!addresses.isEmpty)
        #expect(addresses.allSatisfy { $0.port == 8080 })
        #expect(addresses.contains { $0.host == "127.0.0.1" && $0.family == .ipv4 })
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("connect(host:port:) to a numeric host connects at its first poll, with no lookup (a name lookup waits for a thread of the pool, which long blocking work may hold)")
    func connectByNumericHostSkipsTheLookup() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let port = try listener.localAddress.port
        for host in ["127.0.0.1", "localhost"] {
            let connect = Box(TCPStream.connectFuture(host: host, port: port))
            let opened = try runtime.block(on: pollFn { (context: inout Context) -> Poll<Int> in
                let before = runtime.openHandleCount
                _ = connect.value.poll(&context)
                return .ready(runtime.openHandleCount - before)
            })
            // A lookup is a request, not a handle: the connect's socket comes after it.
            #expect(opened == (host == "localhost" ? 0 : 1), "\(host): \(opened) handle(s) opened at the first poll")
            let stream = try runtime.block(on: timeoutFuture(.seconds(10), pollFn { connect.value.poll(&$0) })).get().get()
            stream.close()
        }
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("connect(host:port:) to a name where every address refuses fails with the last error, named by the host asked for and the address tried")
    func connectByNameRefused() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let raw = try RawSocket.bound()
        defer { raw.close() }
        let outcome = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(host: "localhost", port: raw.port))).get()
        let error = try #require(outcome.failure)
        #expect(error.name == "ECONNREFUSED")
        #expect(error.code == .connectionRefused)
        #expect(error.operation.hasPrefix("connect localhost:\(raw.port) (connect "), "\(error)")
        #expect(error.operation.hasSuffix(":\(raw.port))"), "\(error)")
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a connect future polled again after it completed fails with .invalidArgument: Connect trapped, and ConnectToAny went on to connect to the next address")
    func connectPolledAgainAfterItCompleted() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try TCPListener.bind(NetTest.loopbackAnyPort(), runtime: runtime)
        let address = try listener.localAddress
        var single = TCPStream.connectFuture(to: address)
        let first = try runtime.block(on: pollFn { single.poll(&$0) }).get()
        let again = try runtime.block(on: pollFn { single.poll(&$0) })
        #expect(again.failure?.kind == .invalidArgument, "\(again)")
        var any = TCPStream.connectFuture(toAny: [address, address])
        let second = try runtime.block(on: pollFn { any.poll(&$0) }).get()
        let anyAgain = try runtime.block(on: pollFn { any.poll(&$0) })
        #expect(anyAgain.failure?.kind == .invalidArgument, "\(anyAgain)")
        // Two connections reached the listener, not three.
        var accepted: [TCPStream] = []
        while case .success(.success(let stream)) = try runtime.block(on: timeoutFuture(.milliseconds(200), listener.acceptFuture())) {
            accepted.append(stream)
        }
        #expect(accepted.count == 2)
        for stream in accepted + [first, second] { stream.close() }
        if case .success(let stream) = again { stream.close() }
        if case .success(let stream) = anyAgain { stream.close() }
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}

@Suite("Net futures polled again after they completed")
struct NetFuturesPolledAgainTests {
    @Test("a connect that failed at once (127.255.255.255: ENETUNREACH), a bind by name, a UDP bind by name and a Unix connect, polled again, fail with .invalidArgument instead of making a second socket")
    func socketFuturesPolledAgain() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var connect = TCPStream.connectFuture(to: try SocketAddress("127.255.255.255:80"))
        let failed = try runtime.block(on: pollFn { connect.poll(&$0) })
        #expect(failed.failure?.kind == .libuv(code: UV_ENETUNREACH.rawValue), "\(failed)")
        let connectAgain = try runtime.block(on: pollFn { connect.poll(&$0) })
        #expect(connectAgain.failure?.kind == .invalidArgument, "\(connectAgain)")

        var bind = TCPListener.bindFuture(host: "127.0.0.1", port: 0)
        let listener = try runtime.block(on: pollFn { bind.poll(&$0) }).get()
        let bindAgain = try runtime.block(on: pollFn { bind.poll(&$0) })
        #expect(bindAgain.failure?.kind == .invalidArgument, "\(bindAgain)")
        var bindUDP = UDPSocket.bindFuture(host: "127.0.0.1", port: 0)
        let socket = try runtime.block(on: pollFn { bindUDP.poll(&$0) }).get()
        let bindUDPAgain = try runtime.block(on: pollFn { bindUDP.poll(&$0) })
        #expect(bindUDPAgain.failure?.kind == .invalidArgument, "\(bindUDPAgain)")

        try UnixSocketTests.withTemporaryDirectory { directory in
            let unixListener = try UnixListener.bind(.path(directory + "/again.sock"), runtime: runtime)
            var unixConnect = UnixStream.connectFuture(to: .path(directory + "/again.sock"))
            let client = try runtime.block(on: pollFn { unixConnect.poll(&$0) }).get()
            let unixAgain = try runtime.block(on: pollFn { unixConnect.poll(&$0) })
            #expect(unixAgain.failure?.kind == .invalidArgument, "\(unixAgain)")
            client.close()
            if case .success(let stream) = unixAgain { stream.close() }
            unixListener.close()
        }
        listener.close()
        socket.close()
        if case .success(let extra) = bindAgain { extra.close() }
        if case .success(let extra) = bindUDPAgain { extra.close() }
        if case .success(let extra) = connectAgain { extra.close() }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a UDP send polled again after it completed fails with .invalidArgument instead of sending its datagram again")
    func sendPolledAgain() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(try SocketAddress("127.0.0.1:0"), runtime: runtime)
        let sender = try UDPSocket.bind(try SocketAddress("127.0.0.1:0"), runtime: runtime)
        var send = sender.sendFuture([7], to: try receiver.localAddress)
        #expect(try runtime.block(on: pollFn { send.poll(&$0) }).isSuccess)
        let again = try runtime.block(on: pollFn { send.poll(&$0) })
        #expect(again.failure?.kind == .invalidArgument, "\(again)")
        #expect(try runtime.block(on: timeoutFuture(.seconds(5), receiver.receiveFuture())).get().get().bytes == [7])
        let second = try runtime.block(on: timeoutFuture(.milliseconds(200), receiver.receiveFuture()))
        #expect(!second.isSuccess, "a second datagram arrived: \(second)")
        receiver.close()
        sender.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
