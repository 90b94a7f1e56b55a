import Testing
import Weft

/// A Sendable future, ready once its latch is set.
private struct LatchFuture: Future, Sendable {
    let latch: Latch

    func poll(_ context: inout Context) -> Poll<String> {
        var wait = latch.wait()
        return wait.poll(&context).map { "set" }
    }
}

/// A weak reference to the target of the last waker a future saw.
private struct LastWaker: Sendable {
    weak var target: (any Wakeable)?
}

extension ConcurrencyBridge {
    /// `value(of:)`: a poll future awaited from async code.
    @Suite("value(of:): poll futures awaited from async code")
    struct AwaitFutureTests {
        @Test("a future ready at its first poll is polled once, inline, without becoming a Weft task")
        func readyAtOnceIsInline() throws {
            let runtime = try Runtime()
            let serial = runtime.serialExecutor
            let before = runtime.statistics.tasksSpawned
            let (output, polls, onLoop) = try runtime.guardedBlock(on: AsyncFuture { () async -> (Int?, Int, Bool?) in
                let polls = AtomicCounter()
                let onLoop = Shared<Bool?>(nil)
                let output = try? await value(of: pollFn { (_: inout Context) -> Poll<Int> in
                    polls.increment()
                    onLoop.value = serial.isIsolatingCurrentContext()
                    return .ready(42)
                })
                return (output, polls.value, onLoop.value)
            })
            #expect(output == 42)
            #expect(polls == 1)
            #expect(onLoop == true)
            // block(on:)'s own task and guardedBlock's sentinel: the ready future never became a task.
            #expect(runtime.statistics.tasksSpawned - before == 2)
        }

        @Test("awaits one after another in a task LoopThread.spawn did not start share the loop's spare waker, unless a future kept a copy of it")
        func wakerReuse() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            // Not loop.spawn: its tasks have a waker of their own (next test).
            let (firstKeptAlive, first, second, afterKept) = try await awaitWithin(.seconds(20), Task(executorPreference: loop.taskExecutor) {
                () async throws -> (Bool, ObjectIdentifier, ObjectIdentifier, ObjectIdentifier) in
                let last = Shared(LastWaker())
                // Pending once, so that the waker is really used to resume the task.
                func awaitRecordingWaker() async throws -> ObjectIdentifier {
                    let polls = AtomicCounter()
                    try await value(of: pollFn { (context: inout Context) -> Poll<Void> in
                        last.value = LastWaker(target: context.waker.target)
                        polls.increment()
                        if polls.value > 1 { return .ready(()) }
                        context.waker.wake()
                        return .pending
                    })
                    return ObjectIdentifier(last.value.target!)
                }
                let first = try await awaitRecordingWaker()
                // Only the loop's spare can keep it alive now.
                let firstKeptAlive = last.value.target != nil
                let second = try await awaitRecordingWaker()
                let kept = Shared<Waker?>(nil)
                try await value(of: pollFn { (context: inout Context) -> Poll<Void> in
                    kept.value = context.waker
                    return .ready(())
                })
                return (firstKeptAlive, first, second, try await awaitRecordingWaker())
            })
            #expect(firstKeptAlive, "the first await's waker was freed, not kept for the next")
            #expect(first == second, "the second await did not get the first one's waker")
            #expect(afterKept != first, "a waker a future still holds was handed to the next await")
        }

        @Test("a task LoopThread.spawn started uses one waker for all its awaits; a wake through a copy an earlier future kept costs a later await one more poll, and its own wake still ends it")
        func ownWakerSurvivesStaleWake() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let kept = Shared<Waker?>(nil)
            let polls = AtomicCounter()
            let sameWaker = Shared(false)
            let latch = Latch()
            let waiter = loop.spawn { () async throws -> String in
                try await value(of: pollFn { (context: inout Context) -> Poll<Void> in
                    kept.value = context.waker
                    return .ready(())
                })
                return try await value(of: pollFn { (context: inout Context) -> Poll<String> in
                    if polls.increment() == 1 { sameWaker.value = kept.value!.willWake(context.waker) }
                    var wait = latch.wait()
                    return wait.poll(&context).map { "set after \(polls.value) polls" }
                })
            }
            try await waitUntil { polls.value == 1 }
            kept.value!.wake()  // stale: meant for the first await
            try await waitUntil { polls.value == 2 }
            latch.set()
            #expect(try await awaitWithin(.seconds(20), waiter) == "set after 3 polls")
            #expect(sameWaker.value, "the second await did not get the task's waker")
        }

        @Test("awaiting a future ready at its first poll does not suspend the calling task")
        func readyAtOnceDoesNotSuspend() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let log = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [String] in
                let log = Shared<[String]>([])
                // Queued on the loop before the await: any suspension lets it run first.
                let other = Task(executorPreference: loop.taskExecutor) { log.update { $0.append("other job") } }
                _ = try await value(of: ready(1))
                log.update { $0.append("after the await") }
                await other.value
                return log.value
            })
            #expect(log == ["after the await", "other job"])
        }

        @Test("a pending future is polled by the caller, which suspends until its waker fires: no Weft task is spawned")
        func pendingFutureBecomesATask() throws {
            let runtime = try Runtime()
            let executor = runtime.taskExecutor
            let before = runtime.statistics.tasksSpawned
            let (output, elapsed, log) = try runtime.guardedBlock(on: AsyncFuture { () async -> (Int?, Duration, [String]) in
                let log = Shared<[String]>([])
                let other = Task(executorPreference: executor) { log.update { $0.append("other job") } }
                let start = ContinuousClock.now
                // Made at the first poll: made before it, a thread kept off the
                // CPU 20 ms between the two found it ready, with no suspension.
                let output = try? await value(of: lazy { sleepFuture(for: .milliseconds(20)) }.map { 7 })
                let elapsed = ContinuousClock.now - start
                log.update { $0.append("after the await") }
                await other.value
                return (output, elapsed, log.value)
            })
            #expect(output == 7)
            #expect(elapsed >= .milliseconds(20))
            #expect(log == ["other job", "after the await"])
            #expect(runtime.statistics.tasksSpawned - before == 2)  // block(on:)'s task and the sentinel
            #expect(runtime.statistics.tasksAlive == 0)
            #expect(runtime.pendingTimerCount == 0)
        }

        @Test("awaiting yieldNow() from async code lets other work on the loop run first")
        func awaitedYieldYields() throws {
            let runtime = try Runtime()
            let executor = runtime.taskExecutor
            let log = try runtime.guardedBlock(on: AsyncFuture { () async -> [String] in
                let log = Shared<[String]>([])
                let other = Task(executorPreference: executor) { log.update { $0.append("other job") } }
                _ = try? await value(of: yieldNow())
                log.update { $0.append("after the yield") }
                await other.value
                return log.value
            })
            #expect(log == ["other job", "after the yield"])
        }

        @Test("on a LoopThread, ready and pending futures are both awaited on the loop thread")
        func readyAndPendingOnLoopThread() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let polledOnLoop = Shared<[Bool?]>([])
            let (ready, pending) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> (Int, Int) in
                let ready = try await value(of: pollFn { (_: inout Context) -> Poll<Int> in
                    polledOnLoop.update { $0.append(loop.serialExecutor.isIsolatingCurrentContext()) }
                    return .ready(1)
                })
                var remaining = 3
                let pending = try await value(of: pollFn { (context: inout Context) -> Poll<Int> in
                    polledOnLoop.update { $0.append(loop.serialExecutor.isIsolatingCurrentContext()) }
                    if remaining == 0 { return .ready(2) }
                    remaining -= 1
                    context.waker.wake()
                    return .pending
                })
                loop.serialExecutor.checkIsolated()
                return (ready, pending)
            })
            #expect(ready == 1)
            #expect(pending == 2)
            #expect(polledOnLoop.value == [true, true, true, true, true])
        }

        @Test("a future awaited off any loop runs on LoopThread.shared")
        func offLoopRunsOnSharedLoop() async throws {
            let polledOnShared = Shared<[Bool?]>([])
            let output = try await awaitWithin(.seconds(20), Task { () async throws -> Int in
                try await value(of: sleepFuture(for: .milliseconds(5)).map { () -> Int in
                    polledOnShared.update { $0.append(LoopThread.shared.serialExecutor.isIsolatingCurrentContext()) }
                    return 3
                })
            })
            #expect(output == 3)
            #expect(polledOnShared.value == [true])
        }

        @Test("a Sendable future's value property awaits it, woken from another thread")
        func sendableFutureValue() async throws {
            let latch = Latch()
            let waiter = Task { try await LatchFuture(latch: latch).value }
            try await Task.sleep(for: .milliseconds(5))
            latch.set()
            let output = try await awaitWithin(.seconds(20), waiter)
            #expect(output == "set")
        }

        @Test("futures nest: async code awaits a poll future that runs async code")
        func nestedBothWays() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let result = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> Result<Int, TimedOut> in
                try await value(of: timeoutFuture(.seconds(5), AsyncFuture { () async -> Int in
                    try? await Weft.sleep(for: .milliseconds(2))
                    return loop.serialExecutor.isIsolatingCurrentContext() == true ? 11 : -1
                }))
            })
            #expect(try result.get() == 11)
        }
    }

    /// `AsyncFuture`: an async closure as a poll future, composed by poll combinators
    /// under `Runtime.block(on:)`.
    @Suite("AsyncFuture: async closures inside poll combinators")
    struct AsyncFutureTests {
        @Test("an AsyncFuture is lazy: its closure starts at the first poll")
        func lazyUntilPolled() throws {
            let runtime = try Runtime()
            let started = Latch()
            let future = AsyncFuture { () async -> Int in
                started.set()
                return 5
            }
            try runtime.guardedBlock(on: sleepFuture(for: .milliseconds(5)))
            #expect(!started.isSet)
            #expect(try runtime.guardedBlock(on: future) == 5)
            #expect(started.isSet)
        }

        @Test("an AsyncFuture that finishes first wins a select")
        func asyncWinsSelect() throws {
            let runtime = try Runtime()
            let outcome = try runtime.guardedBlock(on: select(
                either: AsyncFuture { () async -> String in
                    try? await Weft.sleep(for: .milliseconds(5))
                    return "async"
                },
                or: sleepFuture(for: .seconds(10))))
            #expect(outcome.left == "async")
            #expect(runtime.pendingTimerCount == 0)
        }

        @Test("an AsyncFuture that loses a select is dropped and its task is cancelled")
        func asyncLosesSelectAndIsCancelled() throws {
            let runtime = try Runtime()
            let cancelled = Latch()
            let start = ContinuousClock.now
            let outcome = try runtime.guardedBlock(on: select(
                either: AsyncFuture { () async -> Int in
                    do {
                        try await Weft.sleep(for: .seconds(60))
                    } catch {
                        cancelled.set()
                    }
                    return 1
                },
                // Made at the first poll: made before, it could be due by then
                // on a loaded machine, and win before the AsyncFuture (lazy)
                // was ever polled, its task never started (the wait below hung).
                or: lazy { sleepFuture(for: .milliseconds(10)) }.map { "timer" }))
            #expect(outcome.right == "timer")
            // The cancelled task finishes the next time the loop runs.
            try runtime.guardedBlock(on: timeoutFuture(.seconds(20), cancelled.wait())).get()
            #expect(ContinuousClock.now - start < .seconds(2))
            #expect(runtime.pendingTimerCount == 0)
        }

        @Test("timeout around an AsyncFuture yields its output, or TimedOut and cancels it")
        func timeoutAroundAsyncFuture() throws {
            let runtime = try Runtime()
            let quick = try runtime.guardedBlock(on: timeoutFuture(.seconds(5), AsyncFuture { () async -> Int in
                try? await Weft.sleep(for: .milliseconds(2))
                return 42
            }))
            #expect(try quick.get() == 42)

            let cancelled = Latch()
            let start = ContinuousClock.now
            let slow = try runtime.guardedBlock(on: timeoutFuture(.milliseconds(20), AsyncFuture { () async -> Int in
                do {
                    try await Weft.sleep(for: .seconds(60))
                } catch {
                    cancelled.set()
                }
                return 0
            }))
            #expect(slow.failure?.limit == .milliseconds(20))
            #expect(ContinuousClock.now - start >= .milliseconds(20))
            try runtime.guardedBlock(on: cancelled.wait())
            #expect(ContinuousClock.now - start < .seconds(2))
            #expect(runtime.pendingTimerCount == 0)
        }

        @Test("joinAll runs many AsyncFutures concurrently and keeps their order")
        func joinAllOfAsyncFutures() throws {
            let runtime = try Runtime()
            let start = ContinuousClock.now
            // A barrier, not a time bound: each closure waits until all 20 have
            // started, and reports whether they had. Closures run one after
            // another never get there: the first waits out the shared deadline,
            // the others find it passed, and none sees all 20.
            let started = AtomicCounter()
            let barrierDeadline = start + .seconds(10)
            let outputs = try runtime.guardedBlock(on: joinAll((0..<20).map { index in
                AsyncFuture { () async -> (Int, Bool) in
                    started.increment()
                    while started.value < 20, ContinuousClock.now < barrierDeadline {
                        try? await Weft.sleep(for: .milliseconds(1))
                    }
                    let allStarted = started.value == 20
                    // Later ones finish first.
                    try? await Weft.sleep(for: .milliseconds(40 - 2 * index))
                    return (index, allStarted)
                }
            }))
            let elapsed = ContinuousClock.now - start
            #expect(outputs.map(\.0) == Array(0..<20))
            let allSawAllStarted = outputs.allSatisfy { $0.1 }
            #expect(allSawAllStarted, "the closures ran one after another")
            #expect(elapsed >= .milliseconds(40))
            #expect(runtime.pendingTimerCount == 0)
        }

        @Test("an AsyncFuture's closure runs on the thread running the runtime")
        func closureRunsOnTheRuntimeThread() throws {
            let runtime = try Runtime()
            let serial = runtime.serialExecutor
            // Task.sleep's wake comes through Swift's global pool, which a
            // sanitizer run can keep busy for a minute: more patience.
            let isolation = try runtime.guardedBlock(on: AsyncFuture { () async -> [Bool?] in
                var seen = [serial.isIsolatingCurrentContext()]
                try? await Task.sleep(for: .milliseconds(2))
                seen.append(serial.isIsolatingCurrentContext())
                try? await Weft.sleep(for: .milliseconds(2))
                seen.append(serial.isIsolatingCurrentContext())
                return seen
            }, patience: 300)
            #expect(isolation == [true, true, true])
        }
    }
}
