import Testing
import Weft

/// An actor pinned to a loop: its methods run on the loop thread.
private actor Pinned {
    let loop: LoopThread
    private(set) var calls = 0

    init(loop: LoopThread) {
        self.loop = loop
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        loop.serialExecutor.asUnownedSerialExecutor()
    }

    /// Counts the call and reports whether it runs isolated to the loop.
    func call() -> Bool? {
        loop.serialExecutor.checkIsolated()
        calls += 1
        return loop.serialExecutor.isIsolatingCurrentContext()
    }

    /// Appends `entry` to `log` (synchronously, on the actor).
    func record(_ entry: String, in log: Shared<[String]>) {
        log.update { $0.append(entry) }
    }

    /// Awaits a poll future with `value(of:)` and reports whether it was polled on this loop.
    func polledHere() async throws -> Bool? {
        let loop = self.loop
        let polledOnLoop = Shared<Bool?>(nil)
        try await value(of: pollFn { (_: inout Context) -> Poll<Void> in
            polledOnLoop.value = loop.serialExecutor.isIsolatingCurrentContext()
            return .ready(())
        })
        return polledOnLoop.value
    }

    /// Reads through `value(of:)` with the stream's poll future.
    func readWithValueOf(_ stream: TCPStream) async throws -> Result<[UInt8], WeftError> {
        try await value(of: stream.readFuture(upTo: 1) as ReadSome)
    }

    /// Sleeps on the loop's timer wheel and reports whether it is still on the loop after.
    func sleepThenCheck() async throws -> Bool? {
        try await Weft.sleep(for: .milliseconds(2))
        loop.serialExecutor.checkIsolated()
        return loop.serialExecutor.isIsolatingCurrentContext()
    }
}

/// Whether the calling code runs on the shared loop (`@LoopActor` code must).
@LoopActor
private func sharedLoopIsolation() -> Bool? {
    LoopThread.shared.serialExecutor.checkIsolated()
    return LoopThread.shared.serialExecutor.isIsolatingCurrentContext()
}

/// State isolated to the shared loop.
@LoopActor
private final class SharedLoopCounter {
    var value = 0

    func incrementAfterSleeping() async throws -> Bool? {
        try await Weft.sleep(for: .milliseconds(2))
        value += 1
        return LoopThread.shared.serialExecutor.isIsolatingCurrentContext()
    }
}

/// A plain nonisolated async function: it runs on the task's executor preference.
private func nonisolatedHop() async -> Int {
    await Task.yield()
    return 1
}

extension ConcurrencyBridge {
    @Suite("Isolation: code on the loop thread")
    struct IsolationTests {
        @Test("async code spawned on a loop stays on the loop thread across every kind of suspension")
        func spawnedCodeStaysOnTheLoop() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let observations = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [Bool?] in
                var seen: [Bool?] = []
                loop.serialExecutor.checkIsolated()
                seen.append(loop.serialExecutor.isIsolatingCurrentContext())
                try await Weft.sleep(for: .milliseconds(2))  // a Weft timer
                seen.append(loop.serialExecutor.isIsolatingCurrentContext())
                try await Task.sleep(for: .milliseconds(2))  // a Swift timer, resumed from elsewhere
                seen.append(loop.serialExecutor.isIsolatingCurrentContext())
                _ = await nonisolatedHop()
                seen.append(loop.serialExecutor.isIsolatingCurrentContext())
                await Task.yield()
                seen.append(loop.serialExecutor.isIsolatingCurrentContext())
                loop.serialExecutor.checkIsolated()
                return seen
            })
            #expect(observations == [true, true, true, true, true])
        }

        @Test("LoopThread.run runs its body on the loop thread and the caller is not on it")
        func runExecutesOnTheLoop() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            #expect(loop.serialExecutor.isIsolatingCurrentContext() == false)
            let inside = try await awaitWithin(.seconds(20), Task {
                try await loop.run { () async throws -> Bool? in
                    try await Weft.sleep(for: .milliseconds(1))
                    loop.serialExecutor.checkIsolated()
                    return loop.serialExecutor.isIsolatingCurrentContext()
                }
            })
            #expect(inside == true)
        }

        @Test("code on one loop is not isolated to another loop")
        func loopsAreDistinct() async throws {
            let first = try LoopThread()
            defer { first.shutdown() }
            let second = try LoopThread()
            defer { second.shutdown() }
            let (onFirst, onSecond) = try await awaitWithin(.seconds(20), first.spawn {
                (first.serialExecutor.isIsolatingCurrentContext(), second.serialExecutor.isIsolatingCurrentContext())
            })
            #expect(onFirst == true)
            #expect(onSecond == false)
        }

        @Test("an actor pinned to the loop runs its methods on the loop thread when called from elsewhere")
        func pinnedActorRunsOnTheLoop() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let actor = Pinned(loop: loop)
            let (first, second, calls) = try await awaitWithin(.seconds(20), Task {
                (await actor.call(), await actor.call(), await actor.calls)
            })
            #expect(first == true)
            #expect(second == true)
            #expect(calls == 2)
        }

        @Test("an actor pinned to the loop awaits Weft's async APIs on the loop when called from a task on the loop")
        func pinnedActorAwaitsWeftFromLoopTask() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let actor = Pinned(loop: loop)
            let isolated = try await awaitWithin(.seconds(20), loop.spawn { try await actor.sleepThenCheck() })
            #expect(isolated == true)
        }

        @Test("an actor pinned to the loop awaits Weft's async APIs when called from a task that does not prefer the loop")
        func pinnedActorAwaitsWeftFromForeignTask() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let actor = Pinned(loop: loop)
            #expect(try await awaitWithin(.seconds(20), Task { try await actor.sleepThenCheck() }) == true)
        }

        @Test("value(of:) called by an actor pinned to a loop polls the future on that loop, from any task")
        func pinnedActorValueOfRunsOnItsLoop() async throws {
            try await withConnectedPair { loop, _, client, server in
                let actor = Pinned(loop: loop)
                // From a task on the loop.
                #expect(try await awaitWithin(.seconds(20), loop.spawn { try await actor.polledHere() }) == true)
                // From an ordinary task.
                let polledHere = try await awaitWithin(.seconds(20), Task { try await actor.polledHere() })
                try await awaitWithin(.seconds(20), Task { try await client.write([3]) })
                let read = try await awaitWithin(.seconds(20), Task { try await actor.readWithValueOf(server) })
                #expect(polledHere == true, "value(of:) polled the future on another thread")
                #expect((try? read.get()) == [3], "read: \(read)")
            }
        }

        @Test("a task spawned on the loop awaits Weft's async APIs without hopping: a job queued before the await runs after the code that follows it")
        func spawnedTaskDoesNotHopAcrossWeftAwaits() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let log = Shared<[String]>([])
            let (listener, client, server) = try await awaitWithin(.seconds(20), loop.spawn { try await connectedPairOnThisLoop() })
            defer { listener.close(); client.close(); server.close() }
            try await awaitWithin(.seconds(20), loop.spawn { () async throws in
                // A hop back to this task's executor after an await would queue
                // the rest of this task behind `other`.
                let other = Task(executorPreference: loop.taskExecutor) { log.update { $0.append("other job") } }
                _ = try await value(of: ready(1))
                log.update { $0.append("after value(of:)") }
                try await client.write([1, 2, 3])
                log.update { $0.append("after write") }
                await other.value
            })
            #expect(log.value == ["after value(of:)", "after write", "other job"])
        }

        @Test("an async read that waits for data costs the loop one job: its resumption, with no hop before or after")
        func waitingReadIsOneJob() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let (listener, client, server) = try await awaitWithin(.seconds(20), loop.spawn { try await connectedPairOnThisLoop() })
            defer { listener.close(); client.close(); server.close() }
            let (jobs, bytes) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> (Int, [UInt8]) in
                // The data comes from a poll-based task, which runs no Swift job.
                Weft.spawn(sleepFuture(for: .milliseconds(5)).then { _ in client.writeAll([7]) })
                let before = Runtime.currentReport()!.statistics.jobs
                let bytes = try await server.read()
                return (Runtime.currentReport()!.statistics.jobs - before, bytes)
            })
            #expect(bytes == [7])
            #expect(jobs == 1)
        }

        @Test("a task spawned on the loop calls a pinned actor and comes back, both on the loop thread")
        func spawnedTaskCallsPinnedActorOnTheLoop() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let actor = Pinned(loop: loop)
            let (inActor, afterCall) = try await awaitWithin(.seconds(20), loop.spawn { () async -> (Bool?, Bool?) in
                let inActor = await actor.call()
                return (inActor, loop.serialExecutor.isIsolatingCurrentContext())
            })
            #expect(inActor == true)
            #expect(afterCall == true, "the task left the loop thread after calling the actor")
        }

        @Test("@LoopActor functions and types run on LoopThread.shared")
        func loopActorRunsOnTheSharedLoop() async throws {
            #expect(LoopThread.shared.serialExecutor.isIsolatingCurrentContext() == false)
            #expect(try await awaitWithin(.seconds(20), Task { await sharedLoopIsolation() }) == true)
            let fromLoopActor = try await awaitWithin(.seconds(20), Task { @LoopActor () async throws -> Bool? in
                LoopActor.shared.preconditionIsolated()
                try await Task.sleep(for: .milliseconds(1))
                LoopThread.shared.serialExecutor.checkIsolated()
                return LoopThread.shared.serialExecutor.isIsolatingCurrentContext()
            })
            #expect(fromLoopActor == true)
        }

        @Test("@LoopActor code awaits Weft's async APIs on the shared loop when called from a task on that loop")
        func loopActorAwaitsWeftFromSharedLoopTask() async throws {
            let isolated = try await awaitWithin(.seconds(20), LoopThread.shared.spawn { () async throws -> Bool? in
                let counter = SharedLoopCounter()
                let isolated = try await counter.incrementAfterSleeping()
                #expect(await counter.value == 1)
                return isolated
            })
            #expect(isolated == true)
        }

        @Test("@LoopActor code awaits Weft's async APIs (Weft.sleep, value(of:)) when called from an ordinary task")
        func loopActorAwaitsWeftFromOrdinaryTask() async throws {
            let counter = SharedLoopCounter()
            let (afterSleep, count) = try await awaitWithin(.seconds(20), Task {
                (try await counter.incrementAfterSleeping(), await counter.value)
            })
            #expect(afterSleep == true)
            #expect(count == 1)
            let isolated = try await awaitWithin(.seconds(20), Task { @LoopActor () async throws -> Bool? in
                try await value(of: sleepFuture(for: .milliseconds(1)))
                return LoopThread.shared.serialExecutor.isIsolatingCurrentContext()
            })
            #expect(isolated == true)
        }

        @Test("a task spawned on a loop calls @LoopActor code on the shared loop and comes back to its own loop")
        func hopBetweenLoops() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let (onShared, backHome) = try await awaitWithin(.seconds(20), loop.spawn { () async -> (Bool?, Bool?) in
                let onShared = await sharedLoopIsolation()
                return (onShared, loop.serialExecutor.isIsolatingCurrentContext())
            })
            #expect(onShared == true)
            #expect(backHome == true)
        }
    }
}
