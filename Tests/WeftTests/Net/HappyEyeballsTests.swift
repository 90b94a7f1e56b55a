import Glibc
import Testing
import Weft

/// `TCPStream.connect(toAny:)` and `connect(host:port:)`: Happy Eyeballs
/// (RFC 8305) on loopback. This machine's resolver gives `localhost` one
/// address, so the two-family cases pass the addresses themselves.
extension TimingSensitive {
    @Suite("Happy Eyeballs")
    struct HappyEyeballsTests {
        /// A listening socket on [::1]:`port` whose accept queue is full, so a
        /// connect to it is never answered (the kernel drops the SYN): a black
        /// hole on loopback. Close the returned descriptors when done.
        static func blackHole(port: Int) throws -> [Int32] {
            let listener = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            address.sin6_addr = in6addr_loopback
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
            try #require(bound == 0 && listen(listener, 0) == 0, "bind/listen [::1]:\(port): errno \(errno)")
            var descriptors = [listener]
            // Connect until one is left unanswered: the queue is full.
            for _ in 0..<8 {
                let filler = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                descriptors.append(filler)
                _ = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
                }
                var entry = pollfd(fd: filler, events: Int16(POLLOUT), revents: 0)
                if poll(&entry, 1, 200) == 0 { return descriptors }  // unanswered
            }
            Issue.record("the accept queue of [::1]:\(port) never filled")
            return descriptors
        }

        @Test("with an IPv6 address that never answers and an IPv4 listener, the IPv6 is tried first, the IPv4 250 ms later wins, and the unanswered attempt is closed",
              .enabled(if: UDPTests.hasIPv6Loopback, "skipped: this machine cannot bind a socket to ::1"))
        func blackHoleThenIPv4() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let ipv4 = try listener.localAddress
            runtime.spawn(NetTest.acceptLoop(listener, serve: NetTest.echo))
            let hole = try Self.blackHole(port: ipv4.port)
            defer { for fd in hole { close(fd) } }
            let ipv6 = try SocketAddress(host: "::1", port: ipv4.port)

            let start = ContinuousClock.now
            let stream = try runtime.block(on: timeoutFuture(.seconds(5), TCPStream.connectFuture(toAny: [ipv4, ipv6]))).get().get()
            let elapsed = ContinuousClock.now - start
            #expect(try stream.peerAddress == ipv4)
            #expect(elapsed >= .milliseconds(240), "IPv4 started after \(elapsed): IPv6 was not tried first")
            #expect(elapsed < .seconds(2), "took \(elapsed)")
            stream.close()
            listener.close()
            // The black-hole attempt's socket was closed with the future.
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("an IPv6 address that refuses at once hands over to IPv4 at once, not after 250 ms",
              .enabled(if: UDPTests.hasIPv6Loopback, "skipped: this machine cannot bind a socket to ::1"))
        func refusedThenIPv4() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime)
            let ipv4 = try listener.localAddress
            runtime.spawn(NetTest.acceptLoop(listener, serve: NetTest.echo))
            let refusing = try SocketAddress(host: "::1", port: ipv4.port)  // nothing listens on [::1]

            let start = ContinuousClock.now
            let stream = try runtime.block(on: timeoutFuture(.seconds(5), TCPStream.connectFuture(toAny: [ipv4, refusing]))).get().get()
            let elapsed = ContinuousClock.now - start
            #expect(try stream.peerAddress == ipv4)
            #expect(elapsed < .milliseconds(200), "took \(elapsed)")
            stream.close()
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("when every address refuses, the last error is returned; an empty list is an invalid argument",
              .enabled(if: UDPTests.hasIPv6Loopback, "skipped: this machine cannot bind a socket to ::1"))
        func allRefused() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let closed = try RawSocket.bound()  // bound, not listening: its port refuses
            defer { closed.close() }
            let port = closed.port
            let refused = try runtime.block(on: TCPStream.connectFuture(toAny: [
                try SocketAddress(host: "127.0.0.1", port: port), try SocketAddress(host: "::1", port: port),
            ]))
            #expect(refused.failure?.code == .connectionRefused, "\(String(describing: refused.failure))")
            let empty = try runtime.block(on: TCPStream.connectFuture(toAny: []))
            #expect(empty.failure?.kind == .invalidArgument)
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("connect(host:port:) goes through the same path: a name that resolves to a listener connects, from async code too")
        func byName() async throws {
            let loop = try LoopThread(name: "eyeballs")
            defer { loop.shutdown() }
            let baseline = try await NetTest.handleBaseline(on: loop)
            let (listener, address) = try await NetTest.bindLoopback(on: loop)
            let accepted = loop.spawn { try await listener.accept() }
            let peer = try await loop.spawn { () async throws -> SocketAddress in
                let stream = try await TCPStream.connect(host: "localhost", port: address.port)
                defer { stream.close() }
                return try stream.peerAddress
            }.value
            #expect(peer == address)
            try await accepted.value.close()
            listener.close()
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
        }
    }
}
