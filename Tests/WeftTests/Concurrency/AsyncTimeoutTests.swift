import Testing
import Weft

extension ConcurrencyBridge {
    /// The async overload `timeout(_:_:)`: a time limit around an async closure.
    @Suite("timeout(_:_:) for async closures")
    struct AsyncTimeoutTests {
        @Test("an operation that finishes in time returns its result")
        func successInTime() async throws {
            let result = try await awaitWithin(.seconds(20), Task {
                try await timeout(.seconds(5)) { () async -> Int in
                    try? await Weft.sleep(for: .milliseconds(2))
                    return 42
                }
            })
            #expect(result == 42)
        }

        @Test("timeout in a task cancelled already throws CancellationError and runs nothing, as sleep does (the operation, a task of its own, ran uncancelled and its value came back)")
        func inATaskCancelledAlready() async throws {
            let ran = AtomicCounter()
            let task = Task { () async throws -> Int in
                withUnsafeCurrentTask { $0?.cancel() }
                return try await timeout(.seconds(5)) { () async -> Int in
                    ran.increment()
                    return 1
                }
            }
            let result = await outcome(of: { try await awaitWithin(.seconds(20), task) })
            #expect(result.failure is CancellationError, "got \(result)")
            #expect(ran.value == 0)
        }

        @Test("an operation that takes too long throws TimedOut after the limit and is cancelled")
        func failureAfterLimit() async throws {
            let cancelled = Latch()
            let start = ContinuousClock.now
            let result = await outcome(of: {
                try await awaitWithin(.seconds(20), Task {
                    try await timeout(.milliseconds(30)) { () async -> Int in
                        do {
                            try await Weft.sleep(for: .seconds(3600))
                        } catch {
                            cancelled.set()
                        }
                        return 0
                    }
                })
            })
            let elapsed = ContinuousClock.now - start
            #expect((result.failure as? TimedOut)?.limit == .milliseconds(30), "got \(result)")
            #expect(elapsed >= .milliseconds(30))
            try await awaitWithin(.seconds(20), Task { try await value(of: cancelled.wait()) })
        }

        @Test("inside a LoopThread task, timeout runs the operation on that loop and times out on time")
        func timeoutOnLoopThread() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let (quick, slow, elapsed) = try await awaitWithin(.seconds(20), loop.spawn {
                () async throws -> (Bool?, TimedOut?, Duration) in
                let quick = try await timeout(.seconds(5)) { () async -> Bool? in
                    try? await Weft.sleep(for: .milliseconds(1))
                    return loop.serialExecutor.isIsolatingCurrentContext()
                }
                let start = ContinuousClock.now
                var slow: TimedOut?
                do {
                    _ = try await timeout(.milliseconds(10)) { () async -> Bool? in
                        try? await Weft.sleep(for: .seconds(3600))
                        return nil
                    }
                } catch let timedOut as TimedOut {
                    slow = timedOut
                }
                return (quick, slow, ContinuousClock.now - start)
            })
            #expect(quick == true)
            #expect(slow?.limit == .milliseconds(10))
            #expect(elapsed >= .milliseconds(10))
            // A timeout that waited for the operation would take its hour-long sleep:
            // 5 s is loose enough for a loaded machine and still catches that.
            #expect(elapsed < .seconds(5), "timing out took \(elapsed.milliseconds) ms")
        }

        @Test("an operation that ignores cancellation still times out at the limit")
        func ignoringCancellationStillTimesOut() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let (timedOut, elapsed) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> (Bool, Duration) in
                let start = ContinuousClock.now
                do {
                    _ = try await timeout(.milliseconds(20)) { () async -> Int in
                        await nap(.seconds(10))  // not cancellable
                        return 1
                    }
                    return (false, ContinuousClock.now - start)
                } catch is TimedOut {
                    return (true, ContinuousClock.now - start)
                }
            })
            #expect(timedOut)
            // A timeout that waited for the operation would take its 10 s nap: 5 s
            // is loose enough for a loaded machine and still catches that.
            #expect(elapsed < .seconds(5), "the timeout waited for the operation: \(elapsed.milliseconds) ms")
        }

        @Test("the cancel-safe form its documentation gives: a receive that timed out took nothing, the next one gets the value")
        func timedReceiveLosesNothing() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let (sender, receiver) = unboundedChannel(of: Int.self)
            let (firstTimedOut, second) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> (Bool, Int?) in
                let first = try await value(of: timeoutFuture(.milliseconds(10), receiver.next()))
                try sender.send(7)
                let second = try await value(of: timeoutFuture(.seconds(5), receiver.next()))
                return (first.failure != nil, try second.get().0)
            })
            #expect(firstTimedOut)
            #expect(second == 7)
        }

        @Test("an error the operation throws is rethrown")
        func operationErrorRethrown() async throws {
            struct Refused: Error, Equatable {}
            let result = await outcome(of: {
                try await awaitWithin(.seconds(20), Task {
                    try await timeout(.seconds(5)) { () async throws -> Int in throw Refused() }
                })
            })
            #expect(result.failure as? Refused == Refused(), "got \(result)")
        }

        @Test("cancelling the task awaiting timeout throws CancellationError and cancels the operation")
        func cancellingTheCaller() async throws {
            let started = Latch()
            let cancelled = Latch()
            let caller = Task {
                try await timeout(.seconds(3600)) { () async -> Int in
                    started.set()
                    do {
                        try await Weft.sleep(for: .seconds(3600))
                    } catch {
                        cancelled.set()
                    }
                    return 0
                }
            }
            // Cancelled once the operation runs: cancelled before, the call
            // throws at once and runs nothing, so nothing would set the latch.
            try await awaitWithin(.seconds(20), Task { try await value(of: started.wait()) })
            caller.cancel()
            let result = await outcome { try await awaitWithin(.seconds(20), caller) }
            #expect(isCancellation(result), "got \(result)")
            try await awaitWithin(.seconds(20), Task { try await value(of: cancelled.wait()) })
        }
    }
}
