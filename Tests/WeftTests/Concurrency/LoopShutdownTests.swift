import Testing
import Weft

extension ConcurrencyBridge {
    /// `LoopThread.shutdown()` while spawned Swift tasks still wait on the loop.
    @Suite("LoopThread shutdown with tasks still running")
    struct LoopShutdownTests {
        @Test("shutdown with tasks sleeping an hour and blocked in reads and accepts returns (without hanging); the tasks end with CancellationError")
        func shutdownCancelsWaitingTasks() async throws {
            // Whether the shutdown also skipped its 1 s grace period (the tasks
            // ending at the cancel) is checked in the TimingSensitive
            // `shutdownWithWaitingTasksSkipsTheGracePeriod`: the margin under that
            // fixed second does not hold on a loaded machine or under a sanitizer.
            let elapsed = try await shutDownWithWaitingTasks()
            // A shutdown that waited for the tasks (hour-long sleeps, reads that never
            // end) instead of giving up after the grace period still fails here.
            #expect(elapsed <= .seconds(10), "shutdown took \(elapsed.milliseconds) ms")
        }

        @Test("shutdown with a task that ignores cancellation and keeps the loop busy returns within the grace period")
        func shutdownWithStubbornTask() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let running = Latch()
            let stubborn = loop.spawn { () async -> Int in
                running.set()
                // Naps until shutdown cancels it (however late the test gets
                // there on a loaded machine), then ignores the cancellation: a
                // Dispatch timer keeps resuming it on the loop for 5 s more (at
                // least: naps only get longer under load), well past the 1 s
                // grace period and the 3 s bound below.
                while !Task.isCancelled { await nap(.milliseconds(10)) }
                var naps = 0
                while naps < 500 {
                    await nap(.milliseconds(10))
                    naps += 1
                }
                return naps
            }
            try await awaitWithin(.seconds(20), Task { try await value(of: running.wait()) })

            let elapsed = try await awaitWithin(.seconds(20), Task { await shutDownOffThePool(loop) })
            // A shutdown that waited for the stubborn task instead of ending its
            // grace period after 1 s would take 5 s or more: 3 s leaves a loaded
            // machine 2 s of slack and still catches it.
            #expect(elapsed <= .seconds(3), "shutdown took \(elapsed.milliseconds) ms")
            #expect(elapsed >= .milliseconds(900), "shutdown did not give the task its grace period")
            // Jobs arriving after shutdown run on the loop's orphaned-jobs queue: the task still finishes.
            let naps = try await awaitWithin(.seconds(30), stubborn)
            #expect(naps == 500)
        }

        @Test("a shutdown from outside after one from the loop's own task returns only once the loop has ended (it returned at once: the loop's joiner thread had taken the join)", arguments: [true, false])
        func secondShutdownWaitsForTheLoop(graceful: Bool) async throws {
            let loop = try LoopThread()
            let running = Latch()
            let released = Latch()
            let ended = Latch()
            loop.spawn { () async -> Void in
                running.set()
                // Naps until the shutdown cancels it, then ignores the
                // cancellation until the test releases it, and 100 ms more
                // (within the loop's grace second). (A fixed 300 ms had
                // passed already under AddressSanitizer by the check below.)
                while !Task.isCancelled { await nap(.milliseconds(5)) }
                while !released.isSet { await nap(.milliseconds(5)) }
                await nap(.milliseconds(100))
                ended.set()
            }
            try await awaitWithin(.seconds(20), Task { try await value(of: running.wait()) })
            // From the loop's own task: asks the loop to stop and returns at once.
            // The loop's grace second starts after this.
            let asked = try await awaitWithin(.seconds(20), loop.spawn { () -> ContinuousClock.Instant in
                loop.shutdown()
                return .now
            })
            try await Task.sleep(for: .milliseconds(20))  // the loop's joiner thread has taken the join
            released.set()
            #expect(!ended.isSet)
            if graceful {
                await loop.shutdownGracefully()
            } else {
                await shutDownOffThePool(loop)
            }
            if !ended.isSet && ContinuousClock.now - asked >= .seconds(1) {
                // The loop may have ended at the end of its grace second, the
                // task still napping (this test's thread, on a loaded pool, got
                // to the release too late): a shutdown that returned at once
                // cannot be told apart from that here.
                try Test.cancel("skipped: the loop's grace second had passed before the task was released (the pool was busy)")
            }
            #expect(ended.isSet, "the second shutdown returned while the loop's task still ran")
        }

        @Test("two loops shutting each other down from their own tasks both end (each blocked its thread joining the other, for ever)")
        func loopsShuttingEachOtherDown() async throws {
            let first = try LoopThread(name: "first")
            let second = try LoopThread(name: "second")
            let asked = (first.spawn { second.shutdown() }, second.spawn { first.shutdown() })
            try await awaitWithin(.seconds(20), Task {
                await first.shutdownGracefully()
                await second.shutdownGracefully()
            })
            _ = asked
        }

        @Test("shutdown is idempotent, and a task spawned afterwards still runs, off the loop thread, where the loop's executor claims isolation")
        func shutdownIsIdempotent() async throws {
            let loop = try LoopThread()
            let answer = try await awaitWithin(.seconds(20), loop.spawn { 42 })
            #expect(answer == 42)
            loop.shutdown()
            loop.shutdown()
            // A task preferring a stopped loop still runs (on the loop's serial
            // queue of orphaned jobs), and isolation checks agree with where it runs.
            let late = loop.spawn { () async -> (Bool?, Bool) in
                (loop.serialExecutor.isIsolatingCurrentContext(), Runtime.currentReport() == nil)
            }
            let (isolated, offLoop) = try await awaitWithin(.seconds(20), late)
            #expect(isolated == true)
            #expect(offLoop, "no loop runs the calling thread any more")
        }

        @Test("a Swift job still queued when its loop shuts down runs on the loop's orphaned-jobs queue (LoopJobOrphanage), so its task finishes")
        func jobQueuedAtShutdownStillRuns() async throws {
            // Created, given a job and shut down with no await in between (one
            // thread, the runtime's owner), never driven: the task's first job
            // waits in the loop's inbox, and the shutdown finds it there.
            let runtime = try Runtime()
            let task = Task(executorPreference: runtime.taskExecutor) { 42 }
            try runtime.shutdown()
            #expect(try await awaitWithin(.seconds(20), task) == 42)
        }

        @Test("shutdown from a plain thread while a task is in the middle of an hour-long sleep ends it with CancellationError")
        func shutdownFromForeignThread() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let sleeping = Latch()
            let sleeper = loop.spawn {
                sleeping.set()
                try await Weft.sleep(for: .seconds(3600))
            }
            try await awaitWithin(.seconds(20), Task { try await value(of: sleeping.wait()) })
            let took = Task { await shutDownOffThePool(loop) }  // on a thread of its own
            let result = await outcome { try await awaitWithin(.seconds(20), sleeper) }
            #expect(isCancellation(result), "got \(result)")
            let elapsed = try await awaitWithin(.seconds(20), took)
            #expect(elapsed <= .seconds(2), "shutdown took \(elapsed.milliseconds) ms")
        }
    }
}

/// Starts tasks that wait on a loop (hour-long sleeps, reads, an accept, an
/// interval), shuts the loop down and checks that each task ended with
/// `CancellationError`; returns how long `shutdown()` took.
private func shutDownWithWaitingTasks() async throws -> Duration {
    let loop = try LoopThread()
    defer { loop.shutdown() }
    let (listener, client, server) = try await awaitWithin(.seconds(20), loop.spawn { try await connectedPairOnThisLoop() })
    let started = AtomicCounter()
    var tasks: [Task<Void, any Error>] = []
    for _ in 0..<3 {
        tasks.append(loop.spawn {
            started.increment()
            try await Weft.sleep(for: .seconds(3600))
        })
    }
    tasks.append(loop.spawn {
        started.increment()
        _ = try await server.read()
    })
    tasks.append(loop.spawn {
        started.increment()
        _ = try await client.read()
    })
    tasks.append(loop.spawn {
        started.increment()
        _ = try await listener.accept()
    })
    tasks.append(loop.spawn {
        started.increment()
        for try await _ in interval(every: .seconds(30)).values {}
    })
    // Every task has started and is waiting on the loop.
    let deadline = ContinuousClock.now + .seconds(5)
    while started.value < tasks.count && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(2))
    }
    #expect(started.value == tasks.count)
    try await Task.sleep(for: .milliseconds(20))

    let start = ContinuousClock.now
    loop.shutdown()
    let elapsed = ContinuousClock.now - start

    for (index, task) in tasks.enumerated() {
        let result = await outcome { try await awaitWithin(.seconds(20), task) }
        #expect(isCancellation(result), "task \(index) ended with \(result)")
    }
    // No NetTest.expectNothingLeftOpen(on:): before shutdown the handles, timers
    // and pending awaits are open on purpose (they are what shutdown must end),
    // and after it the loop's runtime is gone, so nothing can report on it; its
    // shutdown closes every handle itself.
    return elapsed
}

extension TimingSensitive.ConcurrencyBridgeTiming {
    @Suite("LoopThread shutdown: no grace period when the tasks end at the cancel")
    struct LoopShutdownTimingTests {
        @Test("shutdown with tasks sleeping an hour and blocked in reads and accepts returns before its 1 s grace period ends")
        func shutdownWithWaitingTasksSkipsTheGracePeriod() async throws {
            let elapsed = try await shutDownWithWaitingTasks()
            // Tasks that did not end at the cancel keep the shutdown waiting its
            // whole grace second (fixed in LoopThread.serve).
            #expect(elapsed < .milliseconds(900), "shutdown waited for its grace period: \(elapsed.milliseconds) ms")
        }
    }
}
