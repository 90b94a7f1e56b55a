import Testing
import Weft

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
