import Testing
import Weft

@Suite("Timeout")
struct TimeoutTests {
    @Test("an inner future that finishes first yields .success and the timer is disarmed")
    func innerFinishesFirst() throws {
        let runtime = try Runtime()
        let (outcome, elapsed) = try measure {
            try runtime.guardedBlock(on: timeoutFuture(.seconds(10), sleepFuture(for: .milliseconds(5)).map { 42 }))
        }
        #expect(try outcome.get() == 42)
        #expect(elapsed < .seconds(5))
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("time running out yields .failure(TimedOut) and drops the inner future at once")
    func timeRunsOut() throws {
        let runtime = try Runtime()
        let flag = DropFlag()
        let start = ContinuousClock.now
        let (outcome, droppedAtTimeout, timersAtTimeout) = try runtime.guardedBlock(on:
            timeoutFuture(.milliseconds(20), sleepFuture(for: .seconds(60)).map { "late" }.probed(flag)).map { ($0, flag.isDropped, runtime.pendingTimerCount) }
        )
        let elapsed = ContinuousClock.now - start
        #expect(outcome.failure?.limit == .milliseconds(20))
        #expect(droppedAtTimeout)
        #expect(timersAtTimeout == 0)
        #expect(elapsed >= .milliseconds(20))
    }

    @Test("the time limit counts from the timeout's creation, not its first poll")
    func limitCountsFromCreation() throws {
        let runtime = try Runtime()
        let polls = Counter()
        let guarded = timeoutFuture(.milliseconds(30), pending(Int.self)).counted(polls)
        let start = ContinuousClock.now
        try runtime.guardedBlock(on: sleepFuture(for: .milliseconds(40)))
        let outcome = try runtime.guardedBlock(on: guarded)
        #expect(outcome.failure != nil)
        // Already expired: ready on its first poll. Counting from the first poll
        // instead would arm a fresh 30 ms timer there and need its wake and a
        // second poll, which the poll count catches however loaded the machine is.
        #expect(polls.value == 1, "the expired timeout took \(polls.value) polls")
        #expect(runtime.pendingTimerCount == 0)
        // Wall-clock backstop only (a hang or a long extra wait), loose enough for
        // a loaded CI machine.
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test("an inner future that is ready at the first poll wins even with a zero limit")
    func readyInnerBeatsZeroLimit() throws {
        let runtime = try Runtime()
        let outcome = try runtime.guardedBlock(on: timeoutFuture(.zero, ready("now")))
        #expect(try outcome.get() == "now")
    }

    @Test("a limit already past fires even when the inner future spends the task's whole budget at every poll (its timer, due at its first poll, took a unit there was none of: it never fired)")
    func expiredLimitBeatsABudgetHog() throws {
        let runtime = try Runtime()
        let polls = Counter()
        let hog = pollFn { (context: inout Context) -> Poll<Int> in
            polls.value += 1
            if polls.value == 1_000 { return .ready(polls.value) }  // bounds the run against the bug
            while Budget.consume() {}  // as draining a channel kept full
            context.waker.wake()
            return .pending
        }
        let outcome = try runtime.guardedBlock(on: timeoutFuture(.zero, hog))
        #expect(outcome.failure != nil, "\(outcome)")
        #expect(polls.value == 1)
    }

    @Test("TimedOut carries and describes the limit")
    func timedOutDescription() throws {
        let runtime = try Runtime()
        let outcome = try runtime.guardedBlock(on: timeoutFuture(.milliseconds(3), pending(Int.self)))
        let error = try #require(outcome.failure)
        #expect(error.limit == .milliseconds(3))
        #expect("\(error)".contains("timed out"))
    }
}
