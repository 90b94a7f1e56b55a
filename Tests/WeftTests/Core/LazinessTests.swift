import Testing
import Weft

/// Invariant 1: futures are lazy. Nothing happens until the first poll.
@Suite("Laziness")
struct LazinessTests {
    @Test("a spawned future is not polled before the runtime runs")
    func spawnedFutureIsNotPolledBeforeTheRuntimeRuns() throws {
        let runtime = try Runtime()
        let polls = Counter()
        let handle = runtime.spawn(pollFn { (_: inout Context) -> Poll<Int> in
            polls.value += 1
            return .ready(7)
        })
        #expect(polls.value == 0)
        #expect(runtime.statistics.polls == 0)
        #expect(!handle.isFinished)

        let output = try runtime.block(on: handle)
        #expect(output.isSuccess)
        #expect(try output.get() == 7)
        #expect(polls.value == 1)
    }

    @Test("a future built from combinators does nothing until polled")
    func combinatorsDoNothingUntilPolled() throws {
        let polls = Counter()
        let transforms = Counter()
        let leaf = pollFn { (_: inout Context) -> Poll<Int> in
            polls.value += 1
            return .ready(1)
        }
        var future = join(
            leaf.map { value -> Int in transforms.value += 1; return value + 1 },
            ready(2).then { value -> Ready<Int> in transforms.value += 1; return ready(value * 10) }
        ).boxed()
        #expect(polls.value == 0)
        #expect(transforms.value == 0)

        guard case .ready(let output) = pollOnce(&future) else {
            Issue.record("a join of ready futures was pending")
            return
        }
        #expect(output == (2, 20))
        #expect(polls.value == 1)
        #expect(transforms.value == 2)
    }

    @Test("a sleep that was created but never polled arms no timer")
    func unpolledSleepArmsNoTimer() throws {
        let runtime = try Runtime()
        let handlesBefore = runtime.openHandleCount
        let nap = sleepFuture(for: .seconds(60))
        let handle = runtime.spawn(sleepFuture(for: .seconds(60)))
        #expect(runtime.pendingTimerCount == 0)
        #expect(runtime.openHandleCount == handlesBefore)

        // Once polled (by running the runtime for one turn), the spawned sleep is armed;
        // the one never handed to a task still is not.
        try runtime.block(on: yieldNow())
        #expect(runtime.pendingTimerCount == 1)
        handle.abort()
        _ = try runtime.block(on: handle)
        #expect(runtime.pendingTimerCount == 0)
        withExtendedLifetime(nap) {}
    }

    @Test("a timeout that is never polled starts nothing and drops its inner future untouched")
    func unpolledTimeoutStartsNothing() throws {
        let runtime = try Runtime()
        let polls = Counter()
        let flag = DropFlag()
        do {
            let probe = flag.makeProbe()
            let guarded = timeoutFuture(.seconds(1), pollFn { (_: inout Context) -> Poll<Int> in
                probe.touch()
                polls.value += 1
                return .ready(1)
            })
            #expect(runtime.pendingTimerCount == 0)
            withExtendedLifetime(guarded) {}
        }
        #expect(flag.isDropped)
        #expect(polls.value == 0)
        #expect(runtime.pendingTimerCount == 0)
    }
}
