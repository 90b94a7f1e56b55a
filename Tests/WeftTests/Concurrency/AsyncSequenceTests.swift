import Testing
import Weft

extension ConcurrencyBridge {
    /// Poll streams as `AsyncSequence`s: `listener.connections` and `PollStream.values`.
    @Suite("Poll streams as AsyncSequences")
    struct AsyncSequenceTests {
        @Test("for try await over listener.connections accepts several clients")
        func connectionsAcceptsSeveralClients() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let handlesBefore = try await NetTest.handleBaseline(on: loop)
            let greetings = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [UInt8] in
                let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
                defer { listener.close() }
                let address = try listener.localAddress
                var clients: [Task<Void, any Error>] = []
                for index in 0..<5 {
                    clients.append(loop.spawn {
                        let stream = try await TCPStream.connect(to: address)
                        try await stream.write([UInt8(index)])
                        try await stream.shutdown()
                        _ = try await stream.read()  // until the server closes
                    })
                }
                var greetings: [UInt8] = []
                for try await connection in listener.connections {
                    loop.serialExecutor.checkIsolated()
                    greetings += try await connection.read(upTo: 1)
                    connection.close()
                    if greetings.count == clients.count { break }
                }
                for client in clients { try await client.value }
                return greetings
            })
            #expect(greetings.sorted() == [0, 1, 2, 3, 4])
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore)
        }

        @Test("listener.connections iterated from off the loop accepts too (each next() hops to the listener's loop)")
        func connectionsFromOffTheLoop() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let handlesBefore = try await NetTest.handleBaseline(on: loop)
            let (listener, address) = try await NetTest.bindLoopback(on: loop)
            defer { listener.close() }
            let clients = (0..<3).map { _ in loop.spawn { try await TCPStream.connect(to: address) } }
            let accepted = try await awaitWithin(.seconds(20), Task { () async throws -> Int in
                var accepted = 0
                for try await connection in listener.connections {
                    accepted += 1
                    connection.close()
                    if accepted == 3 { break }
                }
                return accepted
            })
            #expect(accepted == 3)
            for client in clients { try await awaitWithin(.seconds(20), client).close() }
            listener.close()
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore)
        }

        @Test("listener.incoming.values from a task off the listener's loop accepts on that loop (it yielded .wrongThread for ever), as connections does")
        func incomingValuesFromOffTheLoop() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let handlesBefore = try await NetTest.handleBaseline(on: loop)
            let (listener, address) = try await NetTest.bindLoopback(on: loop)
            let client = loop.spawn { try await TCPStream.connect(to: address) }
            let first = try await awaitWithin(.seconds(20), Task { () async throws -> Result<TCPStream, WeftError>? in
                for try await result in listener.incoming.values { return result }
                return nil
            })
            let accepted = try #require(first)
            #expect(accepted.failure == nil, "\(accepted)")
            try? accepted.get().close()
            try await awaitWithin(.seconds(20), client).close()
            listener.close()
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore)
        }

        @Test("listener.connections ends when the listener is closed")
        func connectionsEndWhenListenerCloses() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let handlesBefore = try await NetTest.handleBaseline(on: loop)
            let accepted = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> Int in
                let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
                let address = try listener.localAddress
                loop.spawn {
                    let stream = try await TCPStream.connect(to: address)
                    try await Weft.sleep(for: .milliseconds(20))
                    listener.close()
                    stream.close()
                }
                var accepted = 0
                for try await connection in listener.connections {
                    accepted += 1
                    connection.close()
                }
                return accepted
            })
            #expect(accepted == 1)
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore)
        }

        @Test("spawnBlocking futures in flight in an iteration left after its first element, on a thread that is not their loop's, are cancelled on their loop, and no request stays in flight (ThreadSanitizer: the cancel ran on the leaving thread, beside the requests' callbacks on the loop)")
        func requestsDroppedOffTheirLoop() async throws {
            try await awaitWithin(.seconds(60), Task { () async throws -> Void in
                for round in 0..<100 {
                    for try await first in iter(0..<8).map({ index in spawnBlocking { index + round } }).buffered(4).values {
                        #expect(try first.get() == round)
                        break
                    }
                }
            })
            var inFlight = -1
            for _ in 0..<200 where inFlight != 0 {  // up to 2 s for the cancelled work's callbacks
                inFlight = await LoopThread.shared.run { Runtime.currentReport()?.activeRequestCount ?? -1 }
                if inFlight != 0 { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(inFlight == 0)
        }

        @Test("an iteration left early off the loop drops its stream on the loop: the sleep take(until:) keeps armed is cancelled there (ThreadSanitizer: it was cancelled on the leaving thread, beside the loop's use of its timer wheel)")
        func iterationLeftEarlyOffTheLoop() async throws {
            // The shared loop, meanwhile, arms and fires timers of its own.
            let churn = LoopThread.shared.spawn { for _ in 0..<2000 { try await sleep(for: .microseconds(200)) } }
            defer { churn.cancel() }
            let firsts = try await awaitWithin(.seconds(60), Task { () async throws -> [Int] in
                var firsts: [Int] = []
                for _ in 0..<200 {
                    for try await tick in interval(every: .milliseconds(1)).take(until: sleepFuture(for: .seconds(60))).values {
                        firsts.append(tick)
                        break
                    }
                }
                return firsts
            })
            #expect(firsts == Array(repeating: 0, count: 200))
        }

        @Test("interval(every:).values yields increasing ticks from 0, none before its time")
        func intervalValuesYieldTicks() async throws {
            let start = ContinuousClock.now
            let ticks = try await awaitWithin(.seconds(20), Task { () async throws -> [Int] in
                var ticks: [Int] = []
                for try await tick in interval(every: .milliseconds(20)).values {
                    ticks.append(tick)
                    if ticks.count == 5 { break }
                }
                return ticks
            })
            let elapsed = ContinuousClock.now - start
            // Indices may skip when the consumer falls behind (a busy test machine), but
            // tick n never comes before start + n × period.
            #expect(ticks.first == 0)
            #expect(ticks.count == 5)
            #expect(ticks == ticks.sorted() && Set(ticks).count == ticks.count, "ticks must increase: \(ticks)")
            let lastTick = ticks.last ?? 0
            #expect(elapsed >= .milliseconds(20 * lastTick), "tick \(lastTick) of 20 ms came after \(elapsed.milliseconds) ms")
        }

        @Test("interval(every:).values on a LoopThread ticks on the loop thread, and a finite stream ends the loop")
        func intervalValuesOnLoop() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let (ticks, onLoop) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> ([Int], Bool) in
                var ticks: [Int] = []
                var onLoop = true
                for try await tick in interval(every: .milliseconds(5)).prefix(4).values {
                    ticks.append(tick)
                    onLoop = onLoop && loop.serialExecutor.isIsolatingCurrentContext() == true
                }
                return (ticks, onLoop)
            })
            #expect(ticks.count == 4)
            #expect(ticks.first == 0)
            #expect(ticks == ticks.sorted() && Set(ticks).count == ticks.count, "ticks must increase: \(ticks)")
            #expect(onLoop)
        }

        @Test("cancelling a task iterating interval(every:).values ends it with CancellationError")
        func cancelIntervalIteration() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let ticks = AtomicCounter()
            let iterating = loop.spawn {
                await ending {
                    // An hour: a slow run (the ThreadSanitizer suite took 29 s here) must not see a second tick.
                    for try await _ in interval(every: .seconds(3600)).values { ticks.increment() }
                }
            }
            try await Task.sleep(for: .milliseconds(20))
            try await expectCancelledPromptly(iterating)
            #expect(ticks.value == 1, "only the immediate first tick")
        }
    }
}

/// Compiles only for a `Sendable` argument.
private func requireSendable<T: Sendable>(_: T) {}

@Suite("Sendable async sequences")
struct SendableSequencesTests {
    @Test("listener.connections and the values of a Sendable poll stream are Sendable: they cross into another task")
    func connectionsAreSendable() async throws {
        let loop = try LoopThread(name: "sendable-sequences")
        defer { loop.shutdown() }
        let (listener, address) = try await NetTest.bindLoopback(on: loop)
        let connections = listener.connections
        requireSendable(connections)
        requireSendable(listener.incoming.values)
        // Iterated by another task than the one that made it.
        let first = Task { () async throws -> SocketAddress? in
            for try await connection in connections {
                return try await loop.spawn { try connection.peerAddress }.value
            }
            return nil
        }
        let client = try await loop.spawn { () async throws -> SocketAddress in
            let stream = try await TCPStream.connect(to: address)
            defer { stream.close() }
            let local = try stream.localAddress
            try await Task.sleep(for: .milliseconds(50))
            return local
        }.value
        #expect(try await first.value == client)
        listener.close()
    }
}
