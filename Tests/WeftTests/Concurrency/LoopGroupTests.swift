import Foundation
import Glibc
import Synchronization
import Testing
import Weft

extension ConcurrencyBridge {
    /// `LoopGroup`: several loops, tasks placed on them, one address served on
    /// every loop, and work that crosses loops.
    @Suite("LoopGroup: many loops")
    struct LoopGroupTests {
        @Test("a group starts one loop per allowed CPU by default, named name-i; next() takes them in turn; fewer than one loop is refused")
        func loopsAndNames() async throws {
            let group = try LoopGroup(name: "weft-test")
            defer { group.shutdown() }
            #expect(group.loops.count == LoopGroup.allowedCPUs.count)
            #expect(group.loops.count >= 1)
            for (index, loop) in group.loops.enumerated() {
                let name = try await awaitWithin(.seconds(20), loop.spawn { currentThreadName() })
                #expect(name == "weft-test-\(index)")
            }
            let picked = (0..<(2 * group.loops.count)).map { _ in group.next() }
            for (index, loop) in picked.enumerated() {
                #expect(loop === group.loops[index % group.loops.count])
            }
            #expect(throws: WeftError.self) { try LoopGroup(loops: 0) }
        }

        @Test("a pinned group runs loop i on the i-th allowed CPU; pinning to a CPU the process may not use fails with invalidArgument")
        func pinning() async throws {
            let cpus = LoopGroup.allowedCPUs
            let group = try LoopGroup(loops: 2, pinned: true)
            defer { group.shutdown() }
            for (index, loop) in group.loops.enumerated() {
                // The affinity of the loop's thread, asked there.
                let allowed = try await awaitWithin(.seconds(20), loop.spawn { Self.threadCPUs() })
                #expect(allowed == [cpus[index % cpus.count]])
            }
            #expect(throws: WeftError.self) { try LoopThread(cpu: 100_000) }
        }

        /// The CPUs the calling thread may run on (`Cpus_allowed_list` in
        /// /proc/thread-self/status).
        static func threadCPUs() -> [Int] {
            guard let status = try? String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return [] }
            return line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
                .split(separator: ",").flatMap { part -> [Int] in
                    let bounds = part.split(separator: "-").compactMap { Int($0) }
                    return bounds.count == 2 ? Array(bounds[0]...bounds[1]) : bounds
                }
        }

        @Test("a child process, a loop and a group started from a pinned loop may use every CPU the process may use (each inherited the loop's one CPU, and allowedCPUs said one)")
        func pinningIsNotInherited() async throws {
            let cpus = LoopGroup.allowedCPUs
            guard cpus.count >= 2 else { try Test.cancel("skipped: one CPU, nothing to tell apart") }
            let group = try LoopGroup(loops: 1, pinned: true)
            defer { group.shutdown() }
            let (child, inner, allowed) = try await awaitWithin(.seconds(20), group.loops[0].spawn { () async throws -> (Int, [Int], [Int]) in
                let output = try await Command("/usr/bin/nproc").output()  // nproc counts the CPUs it may use
                let child = Int(String(decoding: output.standardOutput, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                let loop = try LoopThread(name: "from-pinned")
                defer { loop.shutdown() }
                let inner = try await loop.spawn { Self.threadCPUs() }.value
                return (child, inner, LoopGroup.allowedCPUs)
            })
            #expect(child == cpus.count, "the child ran on \(child) CPU(s)")
            #expect(inner == cpus, "a loop started from the pinned loop ran on \(inner)")
            #expect(allowed == cpus, "allowedCPUs asked on the pinned loop: \(allowed)")
        }

        @Test("group.spawn places tasks round-robin, and each stays on its loop's thread across awaits")
        func spawnPlacesAndKeeps() async throws {
            let group = try LoopGroup(loops: 2)
            defer { group.shutdown() }
            let loopThreads = try await threads(of: group)
            var tasks: [Task<[pthread_t], any Error>] = []
            for _ in 0..<8 {
                tasks.append(group.spawn { try await threadsSeenAcrossAwaits() })
            }
            for (index, task) in tasks.enumerated() {
                let seen = try await awaitWithin(.seconds(20), task)
                #expect(Set(seen).count == 1, "task \(index) moved between threads")
                #expect(seen.first == loopThreads[index % 2], "task \(index) is not on loop \(index % 2)")
            }
        }

        @Test("with the group as its executor preference, each task runs on one loop for its whole life, and the tasks spread over the loops")
        func groupAsTaskExecutor() async throws {
            let group = try LoopGroup(loops: 2)
            defer { group.shutdown() }
            let loopThreads = Set(try await threads(of: group))
            var tasks: [Task<[pthread_t], any Error>] = []
            for _ in 0..<32 {
                tasks.append(Task(executorPreference: group) { try await threadsSeenAcrossAwaits() })
            }
            var used = Set<pthread_t>()
            for (index, task) in tasks.enumerated() {
                let seen = try await awaitWithin(.seconds(20), task)
                #expect(Set(seen).count == 1, "task \(index) moved between threads: \(seen)")
                #expect(loopThreads.isSuperset(of: seen), "task \(index) ran off the group's loops")
                used.formUnion(seen)
            }
            #expect(used == loopThreads, "32 tasks all landed on one loop")
        }

        @Test("an actor pinned to loop 1 of a group runs there, whichever loop calls it")
        func actorPinnedToALoop() async throws {
            let group = try LoopGroup(loops: 2)
            defer { group.shutdown() }
            let loopThreads = try await threads(of: group)
            let pinned = LoopPinnedCounter(executor: group.loops[1].serialExecutor)
            let seen = try await awaitWithin(.seconds(20), group.loops[0].spawn { () async -> [pthread_t] in
                var seen: [pthread_t] = []
                for _ in 0..<5 { seen.append(await pinned.increment()) }
                return seen
            })
            #expect(Set(seen) == [loopThreads[1]])
            #expect(await pinned.count == 5)
        }

        @Test("serve(.reusePort) and serve(.handOff): 64 clients are spread over both loops of a group, each served on the loop counted for it; afterwards nothing is left open on either loop", arguments: [ConnectionDistribution.reusePort, .handOff])
        func serveSpreadsConnections(distribution: ConnectionDistribution) async throws {
            let group = try LoopGroup(loops: 2)
            defer { group.shutdown() }
            var baselines: [Int] = []
            for loop in group.loops { baselines.append(try await NetTest.handleBaseline(on: loop)) }
            let loopThreads = try await threads(of: group)
            let servedOn = Mutex([Int](repeating: 0, count: 2))
            let server = try await group.serve(SocketAddress("127.0.0.1:0"), distribution: distribution) { connection in
                let index = loopThreads.firstIndex(of: pthread_self())
                if let index { servedOn.locked { $0[index] += 1 } }
                defer { connection.close() }
                while let bytes = try? await connection.read(), !bytes.isEmpty {
                    guard (try? await connection.write(bytes)) != nil else { return }
                }
            }
            #expect(server.localAddress.port != 0)

            let clients = try LoopThread(name: "test-clients")
            defer { clients.shutdown() }
            let address = server.localAddress
            let echoed = try await awaitWithin(.seconds(20), clients.spawn { () async throws -> Int in
                var streams: [TCPStream] = []
                for _ in 0..<64 { streams.append(try await TCPStream.connect(to: address)) }
                var echoed = 0
                for (index, stream) in streams.enumerated() {
                    try await stream.write(Array("client \(index)".utf8))
                    var reply: [UInt8] = []
                    while reply.count < "client \(index)".utf8.count {
                        let bytes = try await stream.read()
                        if bytes.isEmpty { break }
                        reply += bytes
                    }
                    if reply == Array("client \(index)".utf8) { echoed += 1 }
                }
                for stream in streams { try await stream.shutdown() }
                for stream in streams {
                    while try await !stream.read().isEmpty {}
                    stream.close()
                }
                return echoed
            })
            #expect(echoed == 64)
            let counts = server.connectionsPerLoop
            #expect(counts.reduce(0, +) == 64)
            #expect(counts.allSatisfy { $0 > 0 }, "every loop should serve some of 64 clients: \(counts)")
            if distribution == .handOff { #expect(counts == [32, 32]) }
            try await waitUntil { servedOn.locked { $0 } == counts }
            #expect(servedOn.locked { $0 } == counts, "connections ran on other loops than counted: \(servedOn.locked { $0 }) vs \(counts)")

            await server.close()
            for (loop, baseline) in zip(group.loops, baselines) {
                try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
            }
        }

        @Test("serve(.handOff) after one loop of the group was shut down on its own serves every connection on the loops still running (every second one was handed to the stopped loop and closed unserved)")
        func handOffSkipsAStoppedLoop() async throws {
            let group = try LoopGroup(loops: 2)
            defer { group.shutdown() }
            let server = try await group.serve(SocketAddress("127.0.0.1:0"), distribution: .handOff) { connection in
                defer { connection.close() }
                try await connection.write(Array("hi".utf8))
            }
            await group.loops[1].shutdownGracefully()
            let clients = try LoopThread(name: "test-clients")
            defer { clients.shutdown() }
            let address = server.localAddress
            let replies = try await awaitWithin(.seconds(20), clients.spawn { () async throws -> [String] in
                var replies: [String] = []
                for _ in 0..<4 {
                    let stream = try await TCPStream.connect(to: address)
                    defer { stream.close() }
                    let reply = (try? await value(of: stream.readToEnd()).get()) ?? []
                    replies.append(String(decoding: reply, as: UTF8.self))
                }
                return replies
            })
            #expect(replies == Array(repeating: "hi", count: 4))
            #expect(server.connectionsPerLoop == [4, 0])
            #expect(server.handlerFailures == 0)
            await server.close()
        }

        @Test("waitForConnections counts a connection from its accept: one handed off to a busy loop, its handler not yet started, keeps the drain waiting until the handler returns")
        func drainWaitsForAHandedOffConnectionNotYetStarted() async throws {
            let group = try LoopGroup(loops: 2)
            defer { group.shutdown() }
            let served = AtomicCounter()
            let server = try await group.serve(SocketAddress("127.0.0.1:0"), distribution: .handOff) { connection in
                defer { connection.close() }
                try await connection.write(Array("hi".utf8))
                served.increment()
            }
            // Loop 1 is busy (its thread blocked, on purpose) until released.
            let released = AtomicCounter()
            let blocker = group.loops[1].spawn {
                while released.value == 0 { usleep(1_000) }
            }
            let clients = try LoopThread(name: "test-clients")
            defer { clients.shutdown() }
            let address = server.localAddress
            // Turns go to loop 0, then loop 1: the second connection waits for loop 1.
            let streams = try await awaitWithin(.seconds(20), clients.spawn { () async throws -> [TCPStream] in
                [try await TCPStream.connect(to: address), try await TCPStream.connect(to: address)]
            })
            try await waitUntil { server.connectionsPerLoop == [1, 1] && served.value == 1 }
            await server.close()
            #expect(server.liveConnections == 1, "the connection handed to the busy loop is not counted")
            let early = try await value(of: timeoutFuture(.milliseconds(200), server.waitForConnectionsFuture()))
            #expect((try? early.get()) == nil, "the drain ended before the handed-off connection was served")

            released.increment()
            try await awaitWithin(.seconds(20), blocker)
            let drained = try await value(of: timeoutFuture(.seconds(20), server.waitForConnectionsFuture()))
            #expect((try? drained.get()) != nil, "the drain did not end once the connection was served")
            #expect(served.value == 2)
            #expect(server.liveConnections == 0)
            let replies = try await awaitWithin(.seconds(20), clients.spawn { () async -> [String] in
                var replies: [String] = []
                for stream in streams {
                    defer { stream.close() }
                    let reply = (try? await value(of: stream.readToEnd()).get()) ?? []
                    replies.append(String(decoding: reply, as: UTF8.self))
                }
                return replies
            })
            #expect(replies == ["hi", "hi"])
        }

        /// How many sockets listen on `port` (IPv4, `/proc/net/tcp`: local
        /// address `0100007F:PORT`, state `0A`).
        static func listeningSockets(port: Int) -> Int {
            guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return 0 }
            let local = ":" + String(format: "%04X", port)
            return table.split(separator: "\n").count { row in
                let fields = row.split(separator: " ")
                return fields.count > 3 && fields[1].hasSuffix(local) && fields[3] == "0A"
            }
        }

        @Test("serve racing the shutdown of one of the group's loops fails with .shutDown, never with the \"no runtime\" of a bind run where the loop no longer is; served, it leaves no listener of the dead loop in the port's group")
        func serveRacingALoopsShutdown() async throws {
            var kinds: [String: Int] = [:]
            for _ in 0..<40 {
                let group = try LoopGroup(loops: 2)
                async let serving: GroupServer? = try group.serve(SocketAddress("127.0.0.1:0")) { $0.close() }
                await shutDownOffThePool(group.loops[1])
                do {
                    if let server = try await serving {
                        // The dead loop's listener is closed, not left in the
                        // port's group taking connections nobody accepts.
                        for _ in 0..<100 where Self.listeningSockets(port: server.localAddress.port) > 1 {  // up to 1 s
                            try await Task.sleep(for: .milliseconds(10))
                        }
                        if Self.listeningSockets(port: server.localAddress.port) > 1 { kinds["a listener left", default: 0] += 1 }
                        await server.close()
                    }
                    kinds["served", default: 0] += 1
                } catch let error as WeftError {
                    kinds["\(error.kind)", default: 0] += 1
                }
                await shutDownOffThePool(group)
            }
            #expect(Set(kinds.keys).isSubset(of: ["served", "shutDown"]), "\(kinds)")
        }

        @Test("group.shutdown() with live connections on every loop returns promptly, every client sees its connection end, and the port no longer accepts")
        func shutdownWithLiveConnections() async throws {
            let group = try LoopGroup(loops: 2)
            let server = try await group.serve(SocketAddress("127.0.0.1:0")) { connection in
                // Holds the connection open, reading, until the shutdown cancels it.
                while let bytes = try? await connection.read(), !bytes.isEmpty {}
            }
            let clients = try LoopThread(name: "test-clients")
            defer { clients.shutdown() }
            let address = server.localAddress
            let streams = try await awaitWithin(.seconds(20), clients.spawn { () async throws -> [TCPStream] in
                var streams: [TCPStream] = []
                for _ in 0..<32 { streams.append(try await TCPStream.connect(to: address)) }
                return streams
            })
            try await waitUntil { server.connectionsPerLoop.reduce(0, +) == 32 }
            #expect(server.connectionsPerLoop.allSatisfy { $0 > 0 }, "\(server.connectionsPerLoop)")

            let took = await shutDownOffThePool(group)
            #expect(took < .seconds(3), "group shutdown took \(took)")
            let ended = try await awaitWithin(.seconds(20), clients.spawn { () async -> Int in
                var ended = 0
                for stream in streams {
                    // End of stream or a reset: either way the server side is closed.
                    let bytes = try? await stream.read()
                    if bytes == nil || bytes!.isEmpty { ended += 1 }
                    stream.close()
                }
                return ended
            })
            #expect(ended == 32)
            let refused = try await awaitWithin(.seconds(20), clients.spawn { () async -> Bool in
                (try? await TCPStream.connect(to: address)) == nil
            })
            #expect(refused, "the listeners should be closed after the group's shutdown")
        }

        @Test("serve fails with EADDRINUSE on a port a group already serves (reusePort would join its listeners), serves it again once that server closed, and fails with shutDown once the group has shut down")
        func serveRefusesAServedPortAndADeadGroup() async throws {
            let group = try LoopGroup(loops: 2)
            let first = try await group.serve(SocketAddress("127.0.0.1:0")) { connection in connection.close() }
            for distribution in [ConnectionDistribution.reusePort, .handOff] {
                let error = await #expect(throws: WeftError.self, "\(distribution)") {
                    let second = try await group.serve(first.localAddress, distribution: distribution) { $0.close() }
                    await second.close()
                }
                #expect(error?.code == .addressInUse, "\(distribution): \(String(describing: error))")
            }
            await first.close()
            let again = try await group.serve(first.localAddress) { $0.close() }
            #expect(again.localAddress == first.localAddress)
            await again.close()
            await shutDownOffThePool(group)
            let error = await #expect(throws: WeftError.self) {
                _ = try await group.serve(SocketAddress("127.0.0.1:0")) { $0.close() }
            }
            #expect(error?.kind == .shutDown, "\(String(describing: error))")
        }

        @Test("shutdown() called from a task on one of a group's loops, or on a LoopThread's own thread, returns instead of trapping, and every loop stops")
        func shutdownFromOwnLoop() async throws {
            let group = try LoopGroup(loops: 2)
            #expect(try await awaitWithin(.seconds(20), group.loops[1].spawn { () -> Bool in
                group.shutdown()
                return true
            }))
            try await expectStopped(group.loops)
            let loop = try LoopThread()
            #expect(try await awaitWithin(.seconds(20), loop.spawn { () -> Bool in
                loop.shutdown()
                return true
            }))
            try await expectStopped([loop])
            group.shutdown()  // from outside afterwards: returns at once
        }

        /// Waits until none of `loops` runs (a loop that has shut down
        /// reports nothing), or 20 s.
        private func expectStopped(_ loops: [LoopThread], sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let deadline = ContinuousClock.now + .seconds(20)
            var running = loops.count
            while running > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
                running = 0
                for loop in loops where await loop.run({ Runtime.currentReport() }) != nil { running += 1 }
            }
            #expect(running == 0, "\(running) loop(s) still running", sourceLocation: sourceLocation)
        }

        @Test("a task on loop A reads and writes a stream of loop B (the async methods hop); polling B's read future on A fails with wrongThread")
        func crossLoopStream() async throws {
            let group = try LoopGroup(loops: 2)
            defer { group.shutdown() }
            let (a, b) = (group.loops[0], group.loops[1])
            let (listener, client, server) = try await awaitWithin(.seconds(20), b.spawn { try await connectedPairOnThisLoop() })
            defer { listener.close(); client.close(); server.close() }
            let echo = b.spawn {
                while true {
                    let bytes = try await server.read()
                    if bytes.isEmpty { return }
                    try await server.write(bytes)
                }
            }
            let (reply, polledOnA) = try await awaitWithin(.seconds(20), a.spawn { () async throws -> ([UInt8], WeftError.Kind?) in
                try await client.write(Array("across".utf8))
                var reply: [UInt8] = []
                while reply.count < 6 { reply += try await client.read() }
                // The poll future itself, polled here on loop A, must refuse.
                let polled = try await value(of: client.readFuture(upTo: 16))
                return (reply, polled.failure?.kind)
            })
            #expect(reply == Array("across".utf8))
            #expect(polledOnA == .wrongThread)
            client.close()
            _ = try await awaitWithin(.seconds(20), echo)
        }

        @Test("channels between tasks on two loops: 2,000 round trips of a ping-pong, in order")
        func crossLoopChannels() async throws {
            let group = try LoopGroup(loops: 2)
            defer { group.shutdown() }
            let (pings, pingReceiver) = unboundedChannel(of: Int.self)
            let (pongs, pongReceiver) = unboundedChannel(of: Int.self)
            let ponger = group.loops[1].spawn {
                while let value = try await pingReceiver.receive() { try? pongs.send(value) }
            }
            let total = try await awaitWithin(.seconds(20), group.loops[0].spawn { () async throws -> Int in
                var total = 0
                for round in 0..<2_000 {
                    try? pings.send(round)
                    guard let back = try await pongReceiver.receive(), back == round else { return -1 }
                    total += 1
                }
                return total
            })
            #expect(total == 2_000)
            ponger.cancel()
        }

        @Test("a loop blocked does not stop the other loop from serving its connections")
        func blockedLoopDoesNotStopOthers() async throws {
            let group = try LoopGroup(loops: 2)
            defer { group.shutdown() }
            let server = try await group.serve(SocketAddress("127.0.0.1:0")) { connection in
                defer { connection.close() }
                while let bytes = try? await connection.read(), !bytes.isEmpty {
                    guard (try? await connection.write(bytes)) != nil else { return }
                }
            }
            // Blocks loop 0's thread itself, on purpose, until released: a
            // fixed time could pass before the clients got going, on a loaded
            // machine (a short Task.sleep resumed a second late there).
            let (started, released) = (AtomicCounter(), AtomicCounter())
            defer { released.increment() }  // before the group's shutdown, should a check throw
            let blocker = group.loops[0].spawn {
                started.increment()
                while released.value == 0 { usleep(1_000) }
            }
            try await waitUntil { started.value == 1 }
            let clients = try LoopThread(name: "test-clients")
            defer { clients.shutdown() }
            let address = server.localAddress
            // Connections the kernel gives to loop 1 are echoed while loop 0 is
            // still blocked; those given to loop 0 wait (and are dropped here).
            let echoedWhileBlocked = try await awaitWithin(.seconds(20), clients.spawn { () async -> Int in
                await withTaskGroup(of: Bool.self) { tasks in
                    for _ in 0..<16 {
                        tasks.addTask(executorPreference: clients.taskExecutor) {
                            guard let stream = try? await TCPStream.connect(to: address) else { return false }
                            defer { stream.close() }
                            guard (try? await stream.write([7])) != nil else { return false }
                            let reply = try? await value(of: timeoutFuture(.milliseconds(700), stream.readFuture(upTo: 16)))
                            guard case .success(.success([7]))? = reply else { return false }
                            return true
                        }
                    }
                    var count = 0
                    for await echoed in tasks where echoed { count += 1 }
                    return count
                }
            })
            #expect(echoedWhileBlocked > 0, "no connection was served while loop 0 was blocked")
            released.increment()
            _ = try await awaitWithin(.seconds(20), blocker)
            await server.close()
        }
    }
}

/// An actor whose executor is one loop's.
private actor LoopPinnedCounter {
    let executor: LoopSerialExecutor
    var count = 0

    init(executor: LoopSerialExecutor) {
        self.executor = executor
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    /// Counts, and says which thread it ran on.
    func increment() -> pthread_t {
        count += 1
        return pthread_self()
    }
}

/// The thread of each loop of `group`, in loop order.
private func threads(of group: LoopGroup) async throws -> [pthread_t] {
    var threads: [pthread_t] = []
    for loop in group.loops {
        threads.append(try await awaitWithin(.seconds(20), loop.spawn { pthread_self() }))
    }
    return threads
}

/// The calling thread at the start and after each of a few awaits of
/// different kinds (a Weft timer, a yield, a Swift sleep).
private func threadsSeenAcrossAwaits() async throws -> [pthread_t] {
    var seen = [pthread_self()]
    for _ in 0..<3 {
        try await Weft.sleep(for: .milliseconds(1))
        seen.append(pthread_self())
        await Task.yield()
        seen.append(pthread_self())
        try await Task.sleep(for: .milliseconds(1))
        seen.append(pthread_self())
    }
    return seen
}

private func currentThreadName() -> String {
    let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
    return name.trimmingCharacters(in: .newlines)
}

extension TimingSensitive {
    /// Timed against the pool's other work: skipped under the sanitizers, run
    /// on its own (a busy pool, other tests' tasks, delays the other task).
    @Suite("LoopGroup: shutting down from async code")
    struct LoopGroupGracefulShutdownTests {
        @Test("shutdownGracefully() blocks no thread of Swift's pool while the loops wind down: with every pool thread shutting down a group whose task ends late, another task still runs first; each group has stopped when it returns")
        func shutdownGracefullyBlocksNoThread() async throws {
            let width = ProcessInfo.processInfo.activeProcessorCount + 1
            let groups = try (0..<width).map { _ in try LoopGroup(loops: 1) }
            for group in groups {
                // A task that ends 0.9 s after it starts, cancelled or not: each shutdown waits for it.
                group.loops[0].spawn {
                    await withCheckedContinuation { (ended: CheckedContinuation<Void, Never>) in
                        _ = ForeignThread { usleep(900_000); ended.resume() }
                    }
                }
            }
            let events = Shared<[String]>([])
            await withTaskGroup(of: Void.self) { tasks in
                for group in groups {
                    tasks.addTask {
                        await group.shutdownGracefully()
                        events.update { $0.append("shut down") }
                    }
                }
                tasks.addTask {
                    try? await Task.sleep(for: .milliseconds(100))
                    events.update { $0.append("other task") }
                }
            }
            #expect(events.value.first == "other task", "\(events.value)")
            for group in groups {
                #expect(await group.loops[0].run({ Runtime.currentReport() }) == nil, "a loop still runs")
            }
            let loop = try LoopThread()
            await loop.shutdownGracefully()
            #expect(await loop.run({ Runtime.currentReport() }) == nil)
        }
    }
}
