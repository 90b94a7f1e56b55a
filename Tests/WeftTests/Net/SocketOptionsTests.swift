import Glibc
import Testing
import Weft

@Suite("Socket options")
struct SocketOptionsTests {
    @Test("a TCP listener bound with SocketOptions (reusePort, backlog, buffer sizes, linger) accepts, and a second reusePort listener shares its port; the old bind(backlog:reusePort:) still works")
    func listenerOptions() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let options = SocketOptions(reusePort: true, backlog: 16, receiveBufferSize: 128 * 1024, sendBufferSize: 128 * 1024, linger: .seconds(1))
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

    @Test("options out of range fail with .invalidArgument naming the option: backlog 0, a negative buffer size, a negative linger")
    func invalidOptions() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let address = try SocketAddress("127.0.0.1:0")
        for (options, name) in [(SocketOptions(backlog: 0), "backlog"), (SocketOptions(receiveBufferSize: -1), "receiveBufferSize"),
                                (SocketOptions(linger: .seconds(-1)), "linger")] {
            let error = try #require(throws: WeftError.self) { try TCPListener.bind(address, options: options, runtime: runtime) }
            #expect(error.kind == .invalidArgument)
            #expect(error.detail.contains(name))
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
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
}
