import Foundation
import Synchronization
import Testing
import Weft

/// A `Wakeable` that counts its wakes (from any thread).
final class CountingWakeable: Wakeable {
    let wakes = AtomicCounter()
    func wake() { wakes.increment() }
}

/// Invariants 2 and 3: a pending future has arranged a wake; waking is cheap and
/// idempotent.
@Suite("Wakers")
struct WakerTests {
    @Test("a pending leaf future wakes its task exactly when it becomes ready")
    func pendingLeafWakesItsTaskWhenReady() throws {
        let runtime = try Runtime()
        let mailbox = Mailbox<Int>()
        let receiverPollsWhenSent = Counter(-1)
        let receiver = runtime.spawn(mailbox.receive())
        // Another task takes a few turns of the ready queue, then delivers.
        runtime.spawn(yields(5).map {
            receiverPollsWhenSent.value = mailbox.polls
            mailbox.send(42)
        })

        let output = try runtime.block(on: receiver)
        #expect(try output.get() == 42)
        // Polled once to register, not during the producer's turns, and once after the wake.
        #expect(receiverPollsWhenSent.value == 1)
        #expect(mailbox.polls == 2)
    }

    @Test("a future that moves to another task wakes the newest task")
    func storedWakerFollowsTheFuture() throws {
        let runtime = try Runtime()
        let mailbox = Mailbox<String>()
        // The first task polls the receiver once (it stores that task's waker), then
        // hands the same future on to a second task and finishes.
        let receiver = Box<PollFn<String>?>(mailbox.receive())
        let second = Box<JoinHandle<String>?>(nil)
        let first = runtime.spawn(pollFn { (context: inout Context) -> Poll<Void> in
            _ = receiver.value!.poll(&context)
            second.value = spawn(receiver.value.take()!)
            return .ready(())
        })
        _ = try runtime.block(on: first)
        try runtime.block(on: yields(2))
        #expect(mailbox.polls == 2)  // by the first task, then by the second

        mailbox.send("moved")
        let output = try runtime.block(on: second.value!)
        #expect(try output.get() == "moved")
        #expect(mailbox.polls == 3)
    }

    @Test("waking an already-queued task 100 times from another task polls it once more")
    func repeatedLocalWakesQueueOnce() throws {
        let runtime = try Runtime()
        let mailbox = Mailbox<Void>()
        let target = runtime.spawn(mailbox.receive())
        let wakesBefore = Box(0)
        let wakesAfter = Box(0)
        runtime.spawn(yields(1).map {
            mailbox.value = ()
            wakesBefore.value = runtime.statistics.localWakes
            for _ in 0..<100 { mailbox.waker!.wake() }
            wakesAfter.value = runtime.statistics.localWakes
        })

        _ = try runtime.block(on: target)
        #expect(mailbox.polls == 2)
        // Only the first of the 100 wakes queued the task.
        #expect(wakesAfter.value - wakesBefore.value == 1)
    }

    @Test("a task that wakes itself 100 times in one poll is polled once more")
    func repeatedSelfWakesQueueOnce() throws {
        let runtime = try Runtime()
        let polls = Counter()
        try runtime.block(on: pollFn { (context: inout Context) -> Poll<Void> in
            polls.value += 1
            if polls.value > 1 { return .ready(()) }
            for _ in 0..<100 { context.waker.wake() }
            return .pending
        })
        #expect(polls.value == 2)
        #expect(runtime.statistics.polls == 2)
    }

    @Test("waking a task 100 times from outside the runtime queues it once")
    func repeatedRemoteWakesQueueOnce() throws {
        let runtime = try Runtime()
        let mailbox = Mailbox<Int>()
        let target = runtime.spawn(mailbox.receive())
        try runtime.block(on: yieldNow())  // the target registers its waker
        #expect(mailbox.polls == 1)

        // The test thread is not running the runtime now: these wakes take the
        // cross-thread path through the runtime's inbox.
        mailbox.value = 5
        for _ in 0..<100 { mailbox.waker!.wake() }
        let pollsBefore = runtime.statistics.polls
        let output = try runtime.block(on: target)
        #expect(try output.get() == 5)
        #expect(mailbox.polls == 2)
        // The target once, and the task awaiting it at most twice.
        #expect(runtime.statistics.polls - pollsBefore <= 3)
    }

    @Test("willWake is true for copies of one waker and false for different targets")
    func willWakeComparesTargets() {
        let target = CountingWakeable()
        let waker = Waker(target)
        let copy = waker
        let sameTarget = Waker(target)
        let other = Waker(CountingWakeable())
        let closureA = Waker { }
        let closureB = Waker { }
        #expect(waker.willWake(copy))
        #expect(waker.willWake(sameTarget))
        #expect(!waker.willWake(other))
        #expect(!closureA.willWake(closureB))
        #expect(closureA.willWake(closureA))
        #expect(Waker.noop.willWake(.noop))
        #expect(!Waker.noop.willWake(waker))
    }

    @Test("a task's waker is the same on every poll and differs from other tasks' wakers")
    func taskWakersAreStablePerTask() throws {
        let runtime = try Runtime()
        let seen = Box<[Waker]>([])
        let record = { () -> PollFn<Void> in
            var polled = false
            return pollFn { (context: inout Context) -> Poll<Void> in
                seen.value.append(context.waker)
                if polled { return .ready(()) }
                polled = true
                context.waker.wake()
                return .pending
            }
        }
        let first = runtime.spawn(record())
        let second = runtime.spawn(record())
        _ = try runtime.block(on: join(first, second))
        #expect(seen.value.count == 4)
        // Queue order: first, second, then first and second again.
        #expect(seen.value[0].willWake(seen.value[2]))
        #expect(seen.value[1].willWake(seen.value[3]))
        #expect(!seen.value[0].willWake(seen.value[1]))
    }

    @Test("wakers built from a target or a closure call it on every wake, from any thread")
    func customWakersRunOnWake() {
        let target = CountingWakeable()
        let calls = AtomicCounter()
        let fromTarget = Waker(target)
        let fromClosure = Waker { calls.increment() }
        fromTarget.wake()
        fromClosure.wake()
        let thread = ForeignThread {
            fromTarget.wake()
            fromClosure.wake()
        }
        thread.join()
        #expect(target.wakes.value == 2)
        #expect(calls.value == 2)
        Waker.noop.wake()  // does nothing, and does not trap
    }
}
