import Testing
import Weft

extension TimingSensitive {
    @Suite("TCP concurrent clients")
    struct ConcurrentClientsTests {
        static let clientCount = 1_000
        static let roundTrips = 100

        /// One client: connect, then `roundTrips` times write a message naming
        /// the client and the round and read exactly it back.
        static func client(_ number: Int, to address: SocketAddress) -> some Future<Result<Void, WeftError>> {
            TCPStream.connectFuture(to: address).onSuccess { stream in
                NetTest.steps(roundTrips) { round in
                    let message = NetTest.bytes("client \(number) round \(round);")
                    return stream.writeAll(message).onSuccess { _ in
                        stream.readExact(message.count).map { echoed in
                            echoed.flatMap { $0 == message ? .success(()) : .failure(NetTest.mismatch("client \(number) got \(NetTest.text($0))")) }
                        }
                    }
                }
            }
        }

        @Test("1,000 concurrent clients each complete 100 round trips against one echo server task")
        func thousandClients() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try NetTest.bindLoopback(runtime, backlog: 2048)
            let address = try listener.localAddress
            let accepted = NetTest.Cell(0)
            runtime.spawn(NetTest.acceptLoop(listener, accepted: accepted, serve: NetTest.echo))

            let clients = (0..<Self.clientCount).map { runtime.spawn(Self.client($0, to: address)) }
            let start = ContinuousClock.now
            let outcomes = try runtime.block(on: timeoutFuture(.seconds(45), joinAll(clients))).get()
            let elapsed = ContinuousClock.now - start

            var failures: [String] = []
            for (number, outcome) in outcomes.enumerated() {
                switch outcome {
                case .success(.success): continue
                case .success(.failure(let error)): failures.append("client \(number): \(error)")
                case .failure(let error): failures.append("client \(number) task: \(error)")
                }
            }
            #expect(failures.isEmpty, "\(failures.count) clients failed, first: \(failures.first ?? "")")
            #expect(accepted.value == Self.clientCount)
            // The full figure takes about 2.7 s in a debug build on the 2-core box.
            #expect(elapsed < .seconds(45))

            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }
}
