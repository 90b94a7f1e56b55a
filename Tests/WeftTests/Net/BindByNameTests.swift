import Testing
@testable import Weft

extension NetTest {
    @Suite("Binding by name")
    struct BindByNameTests {
        @Test("TCPListener.bind(host: \"localhost\", port: 0) listens on 127.0.0.1 and accepts; a numeric host binds without a lookup")
        func localhost() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            for host in ["localhost", "127.0.0.1"] {
                let listener = try runtime.block(on: TCPListener.bindFuture(host: host, port: 0)).get()
                let address = try listener.localAddress
                #expect(address.host == "127.0.0.1")
                #expect(address.port != 0)
                let pair = try runtime.block(on: timeoutFuture(.seconds(5), join(listener.acceptFuture(), TCPStream.connectFuture(to: address))))
                let (accepted, connected) = try pair.get()
                let (server, client) = (try accepted.get(), try connected.get())
                #expect(try server.peerAddress == client.localAddress)
                for stream in [server, client] { stream.close() }
                listener.close()
            }
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("a bind by name with an IPv6 option (ipv6Only) binds the name's IPv6 address, not its IPv4 one, which refused the option (a name with both failed, the option blamed); without, IPv4 first")
        func ipv6OptionBindsIPv6() throws {
            let (v4, v6) = (try SocketAddress("127.0.0.1:0"), try SocketAddress("[::1]:0"))
            #expect(SocketAddress.toBind([v4, v6], ipv6Option: true) == v6)
            #expect(SocketAddress.toBind([v4, v6], ipv6Option: false) == v4)
            #expect(SocketAddress.toBind([v4], ipv6Option: true) == v4)
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let names = try runtime.block(on: timeoutFuture(.seconds(20), resolveFuture(host: "localhost", port: 0))).get()
            guard let addresses = try? names.get(), Set(addresses.map(\.family)) == [.ipv4, .ipv6], UDPTests.hasIPv6Loopback else {
                try Test.cancel("skipped end to end: localhost does not resolve to both families here")
            }
            let listener = try runtime.block(on: TCPListener.bindFuture(host: "localhost", port: 0, options: SocketOptions(ipv6Only: true))).get()
            #expect(try listener.localAddress.family == .ipv6)
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("a name that does not resolve fails with the lookup's error naming the host, and binds nothing")
        func unknownHost() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let result = try runtime.block(on: timeoutFuture(.seconds(20), TCPListener.bindFuture(host: "no-such-host.invalid", port: 0))).get()
            #expect(result.failure != nil)
            #expect(result.failure!.operation.hasPrefix("bind no-such-host.invalid:0 (resolve"), "\(result.failure!)")
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("the async form binds on the calling task's loop")
        func asyncForm() async throws {
            let loop = try LoopThread(name: "bind-by-name")
            defer { loop.shutdown() }
            let baseline = try await NetTest.handleBaseline(on: loop)
            // The loop's own count of open handles, before and after the bind.
            let (port, handles) = try await loop.spawn { () async throws -> (Int, [Int]) in
                let before = Runtime.currentReport()?.openHandleCount ?? -1
                let listener = try await TCPListener.bind(host: "localhost", port: 0)
                defer { listener.close() }
                return (try listener.localAddress.port, [before, Runtime.currentReport()?.openHandleCount ?? -1])
            }.value
            #expect(port != 0)
            #expect(handles.count == 2 && handles[0] >= 0 && handles[1] == handles[0] + 1, "the listener is not this loop's: \(handles)")
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
        }
    }
}
