import Foundation
import Testing
import Weft

/// A task that wakes itself `limit` times, doing about `work` of busy work per
/// poll, and counts its polls.
private func spinner(limit: Int, work: Duration, spins: Counter) -> PollFn<Void> {
    pollFn { (context: inout Context) -> Poll<Void> in
        spins.value += 1
        let start = ContinuousClock.now
        while ContinuousClock.now - start < work {}
        if spins.value >= limit { return .ready(()) }
        context.waker.wake()
        return .pending
    }
}

extension TimingSensitive {
    /// Invariant 6: the loop never spins and never sleeps while work is ready.
    @Suite("Scheduling and loop iterations")
    struct SchedulingTests {
        @Test("a spinner that wakes itself 10,000 times does not delay a 5 ms timer by more than a few ms")
        func spinnerDoesNotStarveTimers() throws {
            let lateness = try onTimeInOneOf({ () throws -> Duration in
                let runtime = try Runtime()
                let spins = Counter()
                // A couple of microseconds of work per poll: 10,000 polls take well over 5 ms.
                let spinning = runtime.spawn(spinner(limit: 10_000, work: .microseconds(2), spins: spins))
                let deadline = ContinuousClock.now + .milliseconds(5)
                let (firedAt, spinsAtFire) = try runtime.guardedBlock(on: sleepFuture(until: deadline).map {
                    (ContinuousClock.now, spins.value)
                })
                #expect(firedAt >= deadline)
                #expect(spinsAtFire > 0)
                #expect(spinsAtFire < 10_000, "the spinner had finished before the timer fired")
                #expect(!spinning.isFinished)

                let output = try runtime.block(on: spinning)
                #expect(output.isSuccess)
                #expect(spins.value == 10_000)
                return firedAt - deadline
            }, isOnTime: { $0 <= .milliseconds(15) })
            #expect(lateness <= .milliseconds(15), "timer fired \(lateness.milliseconds) ms late in each of 3 attempts")
        }

        @Test("two self-waking tasks take turns")
        func selfWakingTasksInterleave() throws {
            let runtime = try Runtime()
            let order = Box<[Character]>([])
            func recorder(_ name: Character) -> PollFn<Void> {
                var remaining = 5
                return pollFn { (context: inout Context) -> Poll<Void> in
                    order.value.append(name)
                    remaining -= 1
                    if remaining == 0 { return .ready(()) }
                    context.waker.wake()
                    return .pending
                }
            }
            let a = runtime.spawn(recorder("a"))
            let b = runtime.spawn(recorder("b"))
            _ = try runtime.block(on: join(a, b))
            #expect(String(order.value) == "ababababab")
        }

        @Test("a 50 ms sleep takes a handful of loop iterations, not a spin")
        func sleepDoesNotSpin() throws {
            let runtime = try Runtime()
            let before = runtime.statistics
            let (_, elapsed) = try measure { try runtime.block(on: sleepFuture(for: .milliseconds(50))) }
            let after = runtime.statistics
            #expect(elapsed >= .milliseconds(50))
            #expect(after.loopIterations - before.loopIterations <= 5)
            #expect(after.polls - before.polls <= 5)
        }

        @Test("a task waiting on another thread blocks the loop instead of spinning")
        func foreignWaitDoesNotSpin() throws {
            let runtime = try Runtime()
            let published = Shared<Waker?>(nil)
            let done = AtomicCounter()
            let thread = ForeignThread {
                while published.value == nil { Thread.sleep(forTimeInterval: 0.001) }
                let start = ContinuousClock.now
                while ContinuousClock.now - start < .milliseconds(50) {}
                done.increment()
                published.value!.wake()
            }
            let before = runtime.statistics.loopIterations
            try runtime.block(on: pollFn { (context: inout Context) -> Poll<Void> in
                if done.value > 0 { return .ready(()) }
                published.value = context.waker
                return .pending
            })
            thread.join()
            // One blocking iteration per 100 ms stuck re-check at most, plus the wake.
            #expect(runtime.statistics.loopIterations - before <= 5)
        }
    }
}
