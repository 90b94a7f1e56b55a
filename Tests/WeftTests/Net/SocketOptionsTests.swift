import Foundation
import Glibc
import Testing
import Weft

@Suite("Socket options")
struct SocketOptionsTests {
    @Test("a TCP listener bound with SocketOptions (reusePort, backlog, buffer sizes, linger) accepts, and a second reusePort listener shares its port; the old bind(backlog:reusePort:) still works")
    func listenerOptions() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let options = SocketOptions(reusePort: true, backlog: 16, receiveBufferSize: 128 * 1024, sendBufferSize: 128 * 1024, linger: .zero)
        let first = try TCPListener.bind(SocketAddress("127.0.0.1:0"), options: options, runtime: runtime)
        let address = try first.localAddress
        let second = try TCPListener.bind(address, backlog: 16, reusePort: true, runtime: runtime)
        #expect(try second.localAddress == address)
        let outcome = try runtime.block(on: timeoutFuture(.seconds(10), join(
            select(either: first.acceptFuture(), or: second.acceptFuture()), TCPStream.connectFuture(to: address)))).get()
        let client = try outcome.1.get()
        try client.setOptions(SocketOptions(receiveBufferSize: 64 * 1024, linger: .zero))
        let rejected = try #require(throws: WeftError.self) { try client.setOptions(SocketOptions(reusePort: true)) }
        #expect(rejected.kind == .invalidArgument)
        #expect(rejected.detail.contains("reusePort"))
        client.close()
        switch outcome.0 {
        case .left(let accepted), .right(let accepted): try accepted.get().close()
        }
        first.close()
        second.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("options out of range fail with .invalidArgument naming the option: backlog 0, a negative buffer size, a negative linger, a linger that is not whole seconds, and any linger but zero (its close would block the loop's thread)")
    func invalidOptions() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let address = try SocketAddress("127.0.0.1:0")
        for (options, name) in [(SocketOptions(backlog: 0), "backlog"), (SocketOptions(receiveBufferSize: -1), "receiveBufferSize"),
                                (SocketOptions(linger: .seconds(-1)), "linger"), (SocketOptions(linger: .milliseconds(500)), "linger"),
                                (SocketOptions(linger: .seconds(3)), "blocks the loop")] {
            let error = try #require(throws: WeftError.self) { try TCPListener.bind(address, options: options, runtime: runtime) }
            #expect(error.kind == .invalidArgument)
            #expect(error.detail.contains(name))
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("an option that cannot apply to the socket is refused, not ignored: ipv6Only on IPv4 (TCP and UDP); reusePort, ipv6Only, linger or receiveBufferSize on a Unix socket, whatever its value")
    func inapplicableOptions() throws {
        try UnixSocketTests.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let ipv4 = try SocketAddress("127.0.0.1:0")
            let refusals: [(String, () throws -> Void)] = [
                ("ipv6Only", { _ = try TCPListener.bind(ipv4, options: SocketOptions(ipv6Only: false), runtime: runtime) }),
                ("ipv6Only", { _ = try UDPSocket.bind(ipv4, options: .init(ipv6Only: true), runtime: runtime) }),
                ("reusePort", { _ = try UnixListener.bind(.path(directory + "/reuse.sock"), options: SocketOptions(reusePort: true), runtime: runtime) }),
                ("reusePort", { _ = try UnixListener.bind(.abstract("weft-reuse-\(getpid())"), options: SocketOptions(reusePort: true), runtime: runtime) }),
                ("ipv6Only", { _ = try UnixListener.bind(.path(directory + "/v6.sock"), options: SocketOptions(ipv6Only: true), runtime: runtime) }),
                ("linger", { _ = try UnixListener.bind(.path(directory + "/linger.sock"), options: SocketOptions(linger: .zero), runtime: runtime) }),
                ("receiveBufferSize", { _ = try UnixListener.bind(.path(directory + "/rcvbuf.sock"), options: SocketOptions(receiveBufferSize: 4096), runtime: runtime) }),
                // Values out of range for an IP socket are refused as having no
                // effect, not told to take a value that would then be refused.
                ("linger has no effect", { _ = try UnixListener.bind(.path(directory + "/linger3.sock"), options: SocketOptions(linger: .seconds(3)), runtime: runtime) }),
                ("receiveBufferSize has no effect", { _ = try UnixListener.bind(.path(directory + "/rcvbuf0.sock"), options: SocketOptions(receiveBufferSize: 0), runtime: runtime) }),
            ]
            for (name, bind) in refusals {
                let error = try #require(throws: WeftError.self) { try bind() }
                #expect(error.kind == .invalidArgument)
                #expect(error.detail.hasPrefix(name))
            }
            // Nothing was made: no socket file left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("IPV6_V6ONLY: an IPv6 listener on [::]:0 with ipv6Only false accepts an IPv4 client; with true it refuses one",
          .enabled(if: UDPTests.hasIPv6Loopback, "skipped: this machine cannot bind a socket to ::1"))
    func ipv6Only() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let dual = try TCPListener.bind(SocketAddress("[::]:0"), options: SocketOptions(ipv6Only: false), runtime: runtime)
        let port = try dual.localAddress.port
        let accepted = try runtime.block(on: timeoutFuture(.seconds(10), join(dual.acceptFuture(), TCPStream.connectFuture(to: try SocketAddress(host: "127.0.0.1", port: port))))).get()
        try accepted.0.get().close()
        try accepted.1.get().close()
        dual.close()
        let only = try TCPListener.bind(SocketAddress("[::]:0"), options: SocketOptions(ipv6Only: true), runtime: runtime)
        let refused = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: try SocketAddress(host: "127.0.0.1", port: try only.localAddress.port)))).get()
        #expect(refused.failure?.code == .connectionRefused)
        only.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
    // Read back with getsockopt (SocketProbe). Sizes that are no system
    // default, so that a request that did nothing cannot pass.

    @Test("in force, read back with getsockopt: a TCP listener's backlog, the buffer sizes and linger the connection it accepts inherits, and what TCPStream.setOptions sets")
    func tcpOptionsInForce() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let options = SocketOptions(backlog: 7, receiveBufferSize: 40_000, sendBufferSize: 30_000, linger: .zero)
        let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"), options: options, runtime: runtime)
        let port = try listener.localAddress.port
        let (accepted, connected) = try runtime.block(on: timeoutFuture(.seconds(10), join(
            listener.acceptFuture(), TCPStream.connectFuture(to: try listener.localAddress)))).get()
        let server = try accepted.get()
        let client = try connected.get()
        let clientPort = try client.localAddress.port

        let listening = try #require(SocketProbe.descriptor(localPort: port, listening: true))
        #expect(SocketProbe.listenBacklog(listening) == 7)
        let serverSide = try #require(SocketProbe.descriptor(localPort: port, peerPort: clientPort))
        #expect(SocketProbe.option(serverSide, SOL_SOCKET, SO_RCVBUF) == Int32(SocketProbe.grantedBufferSize(40_000, "rmem")))
        #expect(SocketProbe.option(serverSide, SOL_SOCKET, SO_SNDBUF) == Int32(SocketProbe.grantedBufferSize(30_000, "wmem")))
        #expect(SocketProbe.linger(serverSide) == .init(isOn: true, seconds: 0))

        let clientSide = try #require(SocketProbe.descriptor(localPort: clientPort, peerPort: port))
        #expect(SocketProbe.linger(clientSide)?.isOn == false, "linger is off until set")
        try client.setOptions(SocketOptions(receiveBufferSize: 50_000, linger: .zero))
        #expect(SocketProbe.option(clientSide, SOL_SOCKET, SO_RCVBUF) == Int32(SocketProbe.grantedBufferSize(50_000, "rmem")))
        #expect(SocketProbe.linger(clientSide) == .init(isOn: true, seconds: 0))

        for stream in [server, client] { stream.close() }
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("in force on Unix sockets: a UnixListener's buffer sizes and linger are set on each connection it accepts (a Unix socket does not inherit them), and UnixStream.setOptions sets a stream's")
    func unixOptionsInForce() throws {
        try UnixSocketTests.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let path = directory + "/options.sock"
            let options = SocketOptions(sendBufferSize: 30_000)
            let listener = try UnixListener.bind(.path(path), options: options, runtime: runtime)
            let (accepted, connected) = try runtime.block(on: timeoutFuture(.seconds(10), join(
                listener.acceptFuture(), UnixStream.connectFuture(to: .path(path))))).get()
            let server = try accepted.get()
            let client = try connected.get()

            let serverSides = SocketProbe.acceptedDescriptors(unixPath: path)
            try #require(serverSides.count == 1)
            #expect(SocketProbe.option(serverSides[0], SOL_SOCKET, SO_SNDBUF) == Int32(SocketProbe.grantedBufferSize(30_000, "wmem")))

            let clientSide = try #require(SocketProbe.descriptor(unixPeerPath: path))
            try client.setOptions(SocketOptions(sendBufferSize: 20_000))
            #expect(SocketProbe.option(clientSide, SOL_SOCKET, SO_SNDBUF) == Int32(SocketProbe.grantedBufferSize(20_000, "wmem")))
            // Options a Unix stream socket ignores are refused, as the binding ones.
            for (options, name) in [(SocketOptions(backlog: 8), "backlog"), (SocketOptions(linger: .zero), "linger"),
                                    (SocketOptions(receiveBufferSize: 40_000), "receiveBufferSize"),
                                    (SocketOptions(linger: .seconds(3)), "linger has no effect")] {
                let rejected = try #require(throws: WeftError.self) { try client.setOptions(options) }
                #expect(rejected.kind == .invalidArgument)
                #expect(rejected.detail.contains(name))
            }
            #expect(SocketProbe.linger(clientSide)?.isOn == false, "a refused option is not set")

            for stream in [server, client] { stream.close() }
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }
}
