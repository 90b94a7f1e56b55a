import Glibc
import Testing
import Weft

/// Issue 6 ("Reliability"): clients that start a message and never finish it,
/// whether they close the connection or simply go silent, cost the server
/// nothing but their connection, and only for as long as it is open.
extension TimingSensitive {
    @Suite("Clients that send half a message and vanish cost the server nothing but their connection")
    struct ClientsThatSendHalfAMessageAndVanishTests {
        /// Half of `GET / HTTP/1.1\r\n`: no end of line, so the request line
        /// never completes.
        static let halfRequest = NetTest.bytes("GET / HT")

        /// Opens `count` raw connections to `port` and sends each ``halfRequest``;
        /// the connections that opened.
        static func silentClients(_ count: Int, port: Int) -> [RawSocket] {
            (0..<count).compactMap { _ in
                guard let raw = try? RawSocket.connected(to: port) else { return nil }
                raw.send(halfRequest, within: .seconds(1))
                return raw
            }
        }

        @Test("weft-hello keeps answering a well-behaved client while 200 clients have sent half a request line and closed and 50 more sit silent after half a line; once those close too its descriptors are back at their baseline, and it exits with status 0 on SIGTERM with 20 such clients still connected",
              .enabled(if: SampleBinaries.path("weft-hello") != nil, "weft-hello is not built next to the test bundle"))
        func halfRequestsToWeftHello() throws {
            let server = try Faults.launch("weft-hello")
            defer { server.child.stop() }
            let runtime = try Runtime()
            let port = server.address.port
            #expect(try Faults.helloStatusLine(server.address, runtime: runtime) == "HTTP/1.1 200 OK")
            let descriptors = server.restingDescriptors()

            // 200 clients send half a request line and close at once, without
            // reading what the server may answer (weft-hello answers an
            // incomplete request that ends with the stream with a 404).
            let vanished = AtomicCounter()
            let finished = Faults.onThreads(4) { _ in
                for _ in 0..<50 {
                    guard let raw = try? RawSocket.connected(to: port) else { continue }
                    raw.send(Self.halfRequest, within: .seconds(1))
                    raw.close()
                    vanished.increment()
                }
            }
            #expect(finished, "the vanishing clients did not finish within 20 s")
            #expect(vanished.value == 200, "only \(vanished.value) clients connected")

            // 50 more go silent after half a line (weft-hello would drop them only
            // after its 10 s read timeout); a well-behaved client is served meanwhile.
            let silent = Self.silentClients(50, port: port)
            #expect(silent.count == 50)
            #expect(server.isRunning, "weft-hello died")
            #expect(try Faults.helloStatusLine(server.address, runtime: runtime) == "HTTP/1.1 200 OK")
            let open = Faults.settle(within: .seconds(3), { server.descriptors }) { $0 >= descriptors + silent.count }
            #expect(open >= descriptors + silent.count, "weft-hello holds the silent clients' connections")

            // They vanish too: every connection is released.
            for raw in silent { raw.close() }
            let after = server.descriptorsSettled(at: descriptors)
            #expect(after == descriptors, "weft-hello's descriptors: \(descriptors) before, \(after) after")
            #expect(try Faults.helloStatusLine(server.address, runtime: runtime) == "HTTP/1.1 200 OK")

            // SIGTERM is not held up by clients in the middle of a request.
            let stuck = Self.silentClients(20, port: port)
            defer { for raw in stuck { raw.close() } }
            #expect(stuck.count == 20)
            TimingSensitive.SampleProcessTests.expectCleanExitOnSIGTERM(server.child, connectionsLeftOpen: true)
        }

        @Test("200 clients of weft-echo that send 64 KiB and close without reading the echo leave it running and echoing for a well-behaved client, with its descriptors back at their baseline, and it exits with status 0 on SIGTERM",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [[], ["--poll"]])
        func halfMessagesToWeftEcho(options: [String]) throws {
            let server = try Faults.launch("weft-echo", options)
            defer { server.child.stop() }
            let runtime = try Runtime()
            #expect(try Faults.echoed(by: server.address, runtime: runtime) == Faults.message)
            let descriptors = server.restingDescriptors()

            // Each client sends part of what it meant to and closes (FIN) without
            // reading: the server's echo of it then meets a closed peer.
            let port = server.address.port
            let vanished = AtomicCounter()
            let finished = Faults.onThreads(4) { thread in
                for _ in 0..<50 {
                    guard let raw = try? RawSocket.connected(to: port) else { continue }
                    raw.send([UInt8](repeating: UInt8(thread), count: 64 * 1024), within: .seconds(1))
                    raw.close()
                    vanished.increment()
                }
            }
            #expect(finished, "the vanishing clients did not finish within 20 s")
            #expect(vanished.value == 200, "only \(vanished.value) clients connected")

            #expect(server.isRunning, "weft-echo died")
            #expect(try Faults.echoed(by: server.address, runtime: runtime) == Faults.message)
            let after = server.descriptorsSettled(at: descriptors)
            #expect(after == descriptors, "weft-echo's descriptors: \(descriptors) before, \(after) after")
            TimingSensitive.SampleProcessTests.expectCleanExitOnSIGTERM(server.child)
        }
    }
}
