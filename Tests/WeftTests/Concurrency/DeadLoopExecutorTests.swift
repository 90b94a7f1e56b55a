import Glibc
import Synchronization
import Testing
import Weft

/// An actor pinned to a loop that detects two of its methods running at once.
private actor OverlapDetector {
    let loop: LoopThread
    /// Atomics, not actor state: the point is to detect broken isolation without racing.
    let inside = Atomic<Int>(0)
    let overlaps = Atomic<Int>(0)

    init(loop: LoopThread) {
        self.loop = loop
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        loop.serialExecutor.asUnownedSerialExecutor()
    }

    /// Busy for `duration`, counting an overlap if another call is inside meanwhile.
    func occupy(for duration: Duration) {
        if inside.add(1, ordering: .sequentiallyConsistent).newValue > 1 {
            overlaps.add(1, ordering: .sequentiallyConsistent)
        }
        let until = ContinuousClock.now + duration
        while ContinuousClock.now < until {}
        inside.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Whether the actor's executor says this method runs isolated to it.
    func claimsIsolation() -> Bool {
        loop.serialExecutor.isIsolatingCurrentContext() == true
    }

    /// Busy until another call is inside too (an overlap) or `patience` ran out:
    /// with mutual exclusion this always waits out its patience.
    func waitForCompany(patience: Duration) {
        if inside.add(1, ordering: .sequentiallyConsistent).newValue > 1 {
            overlaps.add(1, ordering: .sequentiallyConsistent)
        }
        let until = ContinuousClock.now + patience
        while ContinuousClock.now < until && inside.load(ordering: .sequentiallyConsistent) < 2 {}
        inside.subtract(1, ordering: .sequentiallyConsistent)
    }
}

extension ConcurrencyBridge {
    /// A loop's executors outlive it: what happens to work sent to them after
    /// `LoopThread.shutdown()`.
    @Suite("Executors of a shut-down loop")
    struct DeadLoopExecutorTests {
        @Test("async reads, writes, shutdowns and accepts on a loop that was shut down throw errors; nothing crashes or hangs")
        func streamsOfADeadLoop() async throws {
            let loop = try LoopThread()
            let (listener, client, server) = try await awaitWithin(.seconds(20), loop.spawn {
                try await connectedPairOnThisLoop()
            })
            await shutDownOffThePool(loop)
            // A task that still prefers the dead loop: its jobs run on the loop's
            // orphan queue.
            let failures = try await awaitWithin(.seconds(20), Task(executorPreference: loop.taskExecutor) {
                () async -> [String?] in
                func failure<T>(_ body: () async throws -> T) async -> String? {
                    guard case .failure(let error) = await outcome(of: body) else { return nil }
                    return (error as? WeftError)?.kind == .closed ? "closed" : "\(error)"
                }
                return [
                    await failure { try await server.read() },
                    await failure { try await client.write([1, 2, 3]) },
                    await failure { try await client.shutdown() },
                    await failure { try await listener.accept() },
                ]
            })
            for (operation, failure) in zip(["read", "write", "shutdown", "accept"], failures) {
                #expect(failure == "closed", "\(operation) on a dead loop's stream: \(failure ?? "no error")")
            }
        }

        // Before the fix that came with this test, both threw
        // CancellationError: a task nobody cancelled was told it was, where
        // `accept()` and `receive()` throw `.closed`.
        @Test("a listener's connections and a UDP socket's datagrams, iterated by another loop's task when their own loop shuts down, throw .closed naming the operation, as accept() and receive() do, not CancellationError")
        func sequencesOfALoopThatShutsDown() async throws {
            let iterating = try LoopThread()
            defer { iterating.shutdown() }
            let owning = try LoopThread()
            let (listener, socket) = try await awaitWithin(.seconds(20), owning.spawn {
                (try TCPListener.bind(SocketAddress("127.0.0.1:0")), try UDPSocket.bind(SocketAddress("127.0.0.1:0")))
            })
            func ending(_ body: @escaping @Sendable () async throws -> Void) -> Task<String, any Error> {
                iterating.spawn { () async -> String in
                    do {
                        try await body()
                        return "ended without an error"
                    } catch let error as WeftError {
                        return "\(error.kind) \(error.operation)"
                    } catch {
                        return "\(type(of: error))"
                    }
                }
            }
            let connections = ending { for try await _ in listener.connections {} }
            let datagrams = ending { for try await _ in socket.datagrams {} }
            try await Task.sleep(for: .milliseconds(100))  // both waiting (either way, the outcome is the same)
            await shutDownOffThePool(owning)
            #expect(try await awaitWithin(.seconds(20), connections) == "closed accept")
            #expect(try await awaitWithin(.seconds(20), datagrams) == "closed receive")
        }

        // Before the fix that came with this test's file and pipe cases, each
        // of these threw CancellationError: a task nobody cancelled was told it
        // was, where spawn() throws .shutDown and a socket's read .closed.
        @Test("from a task still bound to a shut-down loop, the async operations that would make a handle or act on a path (connect, bind by name, resolve, a pipe, an open, a path's status) throw .shutDown naming the operation and its target, and a file's and a pipe's operations .closed, not CancellationError; none carries on on the shared loop")
        func operationsOfADeadLoop() async throws {
            let listening = try LoopThread()
            let listener = try await awaitWithin(.seconds(20), listening.spawn { try TCPListener.bind(SocketAddress("127.0.0.1:0")) })
            let address = try listener.localAddress
            let path = "/tmp/weft-dead-loop-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            defer { unlink(path) }
            let loop = try LoopThread()
            let (file, pipe) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> (File, (reader: PipeStream, writer: PipeStream)) in
                (try await File.open(path, options: [.read, .write, .create, .truncate]), try await PipeStream.pipe())
            })
            await shutDownOffThePool(loop)
            let outcomes = try await awaitWithin(.seconds(20), Task(executorPreference: loop.taskExecutor) {
                () async -> [(String, String)] in
                func outcome(_ operation: String, _ body: () async throws -> Void) async -> (String, String) {
                    do {
                        try await body()
                        return (operation, "no error")
                    } catch let error as WeftError {
                        return (operation, "\(error.kind) \(error.operation)")
                    } catch {
                        return (operation, "\(type(of: error))")
                    }
                }
                return [
                    await outcome("shutDown connect \(address)") { try await TCPStream.connect(to: address).close() },
                    await outcome("shutDown connect 127.0.0.1:\(address.port)") { try await TCPStream.connect(host: "127.0.0.1", port: address.port).close() },
                    await outcome("shutDown bind 127.0.0.1:0") { try await TCPListener.bind(host: "127.0.0.1", port: 0).close() },
                    await outcome("shutDown bind udp 127.0.0.1:0") { try await UDPSocket.bind(host: "127.0.0.1", port: 0).close() },
                    await outcome("shutDown resolve localhost:80") { _ = try await resolve(host: "localhost", port: 80) },
                    await outcome("shutDown pipe") { _ = try await PipeStream.pipe() },
                    await outcome("shutDown open \(path)") { try await File.open(path).close() },
                    await outcome("shutDown stat \(path)") { _ = try await FileSystem.status(of: path) },
                    await outcome("closed write \(path)") { try await file.write([1]) },
                    await outcome("closed read \(path)") { _ = try await file.read() },
                    await outcome("closed sync \(path)") { try await file.sync() },
                    await outcome("closed read") { _ = try await pipe.reader.read() },
                    await outcome("closed write") { try await pipe.writer.write([1]) },
                ]
            })
            for (expected, outcome) in outcomes {
                #expect(outcome == expected, "from a dead loop's task")
            }
            listener.close()
            await shutDownOffThePool(listening)
        }

        @Test("an await in flight when its loop shut down, in a task the shutdown does not cancel, ends with CancellationError once woken: its future is not polled off the loop (a sleep polled there trapped)")
        func awaitWokenAfterShutdown() async throws {
            let loop = try LoopThread()
            let (sender, receiver) = unboundedChannel(of: Int.self)
            let waiter = Task(executorPreference: loop.taskExecutor) { () async throws -> Void in
                // Polled again after the wake, the second stage needs a loop.
                try await value(of: receiver.next().then { _ in sleepFuture(for: .milliseconds(1)) })
            }
            try await Task.sleep(for: .milliseconds(100))  // suspended in the receive
            await shutDownOffThePool(loop)
            try sender.send(1)
            let ended = await outcome { try await awaitWithin(.seconds(20), waiter) }
            #expect(ended.failure is CancellationError, "\(ended)")
        }

        @Test("awaits woken by the shutdown's own cancellations drop what they awaited (a timer still in the wheel) only after the shutdown: on the orphaned-jobs queue they raced it tearing the wheel down (ThreadSanitizer)")
        func awaitsWokenByTheShutdownWaitForIt() async throws {
            let loop = try LoopThread()
            let suspended = AtomicCounter()
            let waiters = (0..<200).map { _ in
                Task(executorPreference: loop.taskExecutor) { () async throws -> Void in
                    // A Weft task the shutdown cancels, which wakes this await.
                    let never = spawn(pending(Void.self))
                    suspended.increment()
                    _ = try await value(of: timeoutFuture(.seconds(60), never))
                }
            }
            try await awaitWithin(.seconds(20), Task {
                while suspended.value < waiters.count { try await Task.sleep(for: .milliseconds(5)) }
            })
            await shutDownOffThePool(loop)
            for waiter in waiters {
                // Cancelled (its await ended off the dead loop) or its value: a hang is recorded.
                let ended = await outcome { try await awaitWithin(.seconds(20), waiter) }
                #expect(ended.failure == nil || ended.failure is CancellationError, "\(ended)")
            }
        }

        @Test("spawnBlocking awaited across its loop's shutdown, some work queued, some running, some done just after: each await ends, and the request is cancelled on the orphaned-jobs queue one at a time with the loop's teardown, which runs the work's callback (ThreadSanitizer: both changed the request's waiting list, and uv_cancel could lock a freed loop)")
        func blockingWorkAwaitedAcrossShutdown() async throws {
            for round in 0..<10 {
                let loop = try LoopThread()
                let started = AtomicCounter()
                let waiters = (0..<16).map { index in
                    Task(executorPreference: loop.taskExecutor) { () async throws -> Void in
                        started.increment()
                        _ = try await value(of: spawnBlocking { usleep(UInt32((index * 53 + round * 29) % 600)) })
                    }
                }
                try await awaitWithin(.seconds(20), Task {
                    while started.value < waiters.count { try await Task.sleep(for: .milliseconds(1)) }
                })
                await shutDownOffThePool(loop)
                for waiter in waiters {
                    let ended = await outcome { try await awaitWithin(.seconds(20), waiter) }
                    #expect(ended.failure == nil || ended.failure is CancellationError, "\(ended)")
                }
            }
        }

        /// Expects each named task, awaiting on a loop that shut down, to end
        /// within 5 s, cancelled or with its stream closed.
        private func expectEndedByShutdown(
            _ tasks: [(String, Task<Void, any Error>)], sourceLocation: SourceLocation = #_sourceLocation
        ) async {
            for (name, task) in tasks {
                let ended = await outcome { try await awaitWithin(.seconds(5), task, sourceLocation: sourceLocation) }
                let error = ended.failure
                #expect(error is CancellationError || (error as? WeftError)?.kind == .closed, "\(name): \(ended)",
                        sourceLocation: sourceLocation)
            }
        }

        @Test("awaits in flight on a loop that shuts down, in tasks its shutdown does not cancel (a task preferring the loop, an actor pinned to it), end instead of hanging: a sleep, a read")
        func inFlightAwaitsOfUnspawnedTasks() async throws {
            let loop = try LoopThread()
            let (listener, client, server) = try await awaitWithin(.seconds(20), loop.spawn { try await connectedPairOnThisLoop() })
            let sleeper = Task(executorPreference: loop.taskExecutor) { try await Weft.sleep(for: .seconds(3600)) }
            let reader = Task(executorPreference: loop.taskExecutor) { _ = try await server.read() }
            let pinned = PinnedSleeper(loop: loop)
            let actorSleeper = Task { try await pinned.sleep() }
            try await Task.sleep(for: .milliseconds(100))  // all three suspended
            await shutDownOffThePool(loop)
            await expectEndedByShutdown([("sleep", sleeper), ("read", reader), ("pinned actor's sleep", actorSleeper)])
            _ = (listener, client)
        }

        @Test("a task spawned on one loop, awaiting on another that shuts down (a sleep, a read, a sleep in an actor pinned there), ends instead of hanging: its own waker served the await there, which that loop's shutdown did not list")
        func spawnedTaskAwaitingOnAnotherLoop() async throws {
            let home = try LoopThread()
            defer { home.shutdown() }
            let other = try LoopThread()
            let (listener, client, server) = try await awaitWithin(.seconds(20), other.spawn { try await connectedPairOnThisLoop() })
            let pinned = PinnedSleeper(loop: other)
            let sleeper = home.spawn { try await other.run { try await Weft.sleep(for: .seconds(3600)) } }
            let reader = home.spawn { _ = try await server.read() }
            let actorSleeper = home.spawn { try await pinned.sleep() }
            try await Task.sleep(for: .milliseconds(100))  // all three suspended on `other`
            await shutDownOffThePool(other)
            await expectEndedByShutdown([("sleep", sleeper), ("read", reader), ("pinned actor's sleep", actorSleeper)])
            _ = (listener, client)
        }

        @Test("spawn(_:) from async code still bound to a shut-down loop (a task preferring it, an actor pinned to it) starts a task cancelled at once, as Runtime.spawn does after shutdown: its future dropped, its handle failing with .runtimeShutDown (it trapped)")
        func spawnFromADeadLoopsAsyncCode() async throws {
            let loop = try LoopThread()
            await shutDownOffThePool(loop)
            let drops = AtomicCounter()
            let fromTask = try await awaitWithin(.seconds(20), Task(executorPreference: loop.taskExecutor) {
                () -> [(JoinHandle<Int>, dropsAfter: Int)] in
                let plain = spawn(pollFn { [probe = CountingProbe(drops)] _ -> Poll<Int> in probe.touch(); return .ready(1) })
                let plainDrops = drops.value
                let named = spawn(pollFn { [probe = CountingProbe(drops)] _ -> Poll<Int> in probe.touch(); return .ready(2) }, name: "named")
                return [(plain, plainDrops), (named, drops.value)]
            })
            let fromActor = try await awaitWithin(.seconds(20), Task { await PinnedSleeper(loop: loop).spawnOne(drops) })
            let spawned = fromTask + [fromActor]
            #expect(spawned.map(\.dropsAfter) == [1, 2, 3], "each future dropped by the time spawn returned")
            #expect(spawned.allSatisfy { $0.0.isFinished })
            let runtime = try Runtime()
            for (handle, _) in spawned {
                #expect(try runtime.guardedBlock(on: handle).failure == JoinError(.runtimeShutDown))
            }
        }

        @Test("spawn(_:) where no loop runs, in a Swift task bound to none, still traps: there is no runtime to run the task")
        func spawnWithoutALoopTraps() async {
            await #expect(processExitsWith: .failure) {
                _ = spawn(ready(1))
            }
        }

        @Test("a task waiting for a child process on a loop that shuts down, which the shutdown does not cancel, ends instead of hanging (the wake the shutdown made was queued on the dying loop and lost)")
        func childWaitAcrossShutdown() async throws {
            let loop = try LoopThread()
            // Long enough to outlast a slow run (2 s ended first under
            // ThreadSanitizer, and an awaiting test there can take 70 s);
            // killed at the end.
            let child = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> ChildProcess in
                var command = Command("/bin/sleep", arguments: ["3600"])
                command.standardInput = .null
                return try await command.spawn()
            })
            defer { kill(child.processID, SIGKILL) }
            let waiter = Task(executorPreference: loop.taskExecutor) { try await child.wait() }
            try await Task.sleep(for: .milliseconds(100))  // suspended in the wait
            await shutDownOffThePool(loop)
            let ended = await outcome { try await awaitWithin(.seconds(5), waiter) }
            let error = ended.failure
            #expect(error is CancellationError || (error as? WeftError)?.code == .shutDown, "\(ended)")
        }

        @Test("a shut-down loop's executors do not claim the thread of a loop created after it")
        func deadLoopDoesNotClaimNewLoop() async throws {
            let dead = try LoopThread()
            try await awaitWithin(.seconds(20), dead.spawn { 1 })
            dead.shutdown()
            var claims: [String] = []
            for attempt in 0..<5 {
                let fresh = try LoopThread()
                let (claimsIsolation, taskRanOnFresh) = try await awaitWithin(.seconds(20), fresh.spawn {
                    () async -> (Bool?, Bool?) in
                    let claimsIsolation = dead.serialExecutor.isIsolatingCurrentContext()
                    // A task preferring the dead loop must not run on this one.
                    let taskRanOnFresh = await Task(executorPreference: dead.taskExecutor) {
                        fresh.serialExecutor.isIsolatingCurrentContext()
                    }.value
                    return (claimsIsolation, taskRanOnFresh)
                })
                fresh.shutdown()
                if claimsIsolation == true { claims.append("attempt \(attempt): dead loop claims isolation") }
                if taskRanOnFresh == true { claims.append("attempt \(attempt): dead loop's task ran on the new loop") }
            }
            #expect(claims.isEmpty, "\(claims)")
        }

        @Test("a dead loop's stream is .wrongThread on the thread of a loop started after it, which glibc may give the dead thread's pthread_t (the stream passed the check there, and a read reached the dead loop and waited for ever)")
        func deadLoopHandlesRefuseANewThread() async throws {
            let dead = try LoopThread()
            let (listener, client) = try await awaitWithin(.seconds(20), dead.spawn { () async throws -> (TCPListener, TCPStream) in
                let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
                return (listener, try await TCPStream.connect(to: listener.localAddress))
            })
            await shutDownOffThePool(dead)
            var passed: [String] = []
            for attempt in 0..<5 {
                let fresh = try LoopThread()
                let (localAddress, read) = try await awaitWithin(.seconds(20), fresh.spawn { () async -> (WeftError.Kind?, WeftError.Kind?) in
                    let localAddress: WeftError.Kind? = (Result { () throws(WeftError) in try client.localAddress }).failure?.kind
                    let read = try? await value(of: timeoutFuture(.seconds(1), client.readFuture(upTo: 1)))
                    let readError: WeftError.Kind? = if case .success(.failure(let error))? = read { error.kind } else { nil }
                    return (localAddress, readError)
                })
                await shutDownOffThePool(fresh)
                if localAddress != .wrongThread { passed.append("attempt \(attempt): localAddress \(String(describing: localAddress))") }
                if read != .wrongThread { passed.append("attempt \(attempt): read \(String(describing: read))") }
            }
            #expect(passed.isEmpty, "\(passed)")
            listener.close()
            client.close()
        }
    }
}

extension TimingSensitive.ConcurrencyBridgeTiming {
    /// Mutual exclusion of actors pinned to a loop, checked with busy methods on
    /// both cores (hence serialized with the other timing-sensitive suites).
    @Suite("Pinned actors keep mutual exclusion")
    struct PinnedActorExclusionTests {
        @Test("an actor pinned to a loop keeps mutual exclusion while the loop runs")
        func pinnedActorIsExclusiveWhileRunning() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let actor = OverlapDetector(loop: loop)
            try await awaitWithin(.seconds(20), Task {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<10 { group.addTask { await actor.occupy(for: .milliseconds(1)) } }
                }
            })
            #expect(actor.overlaps.load(ordering: .sequentiallyConsistent) == 0)
        }

        @Test("an actor pinned to a loop that was shut down still runs one method at a time")
        func pinnedActorStaysExclusiveAfterShutdown() async throws {
            let loop = try LoopThread()
            let actor = OverlapDetector(loop: loop)
            await actor.occupy(for: .zero)
            loop.shutdown()
            // Two calls, each waiting up to 250 ms for the other to come in.
            try await awaitWithin(.seconds(20), Task {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<2 { group.addTask { await actor.waitForCompany(patience: .milliseconds(250)) } }
                }
            })
            #expect(actor.overlaps.load(ordering: .sequentiallyConsistent) == 0)
            #expect(await actor.claimsIsolation(), "its methods run where its executor says they are isolated")
        }
    }
}

/// An actor pinned to a loop that sleeps a minute there.
private actor PinnedSleeper {
    let loop: LoopThread

    init(loop: LoopThread) {
        self.loop = loop
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        loop.serialExecutor.asUnownedSerialExecutor()
    }

    func sleep() async throws {
        try await Weft.sleep(for: .seconds(3600))
    }

    /// Spawns a task whose future drops a probe counted by `drops`, and
    /// returns its handle with the count of drops once spawn returned.
    func spawnOne(_ drops: AtomicCounter) -> (JoinHandle<Int>, dropsAfter: Int) {
        let handle = spawn(pollFn { [probe = CountingProbe(drops)] _ -> Poll<Int> in probe.touch(); return .ready(3) })
        return (handle, drops.value)
    }
}

/// Counts its own drop: a future that captures it was dropped when the count
/// went up, on whichever thread dropped it.
private final class CountingProbe: Sendable {
    let drops: AtomicCounter
    init(_ drops: AtomicCounter) { self.drops = drops }
    func touch() {}
    deinit { drops.increment() }
}
