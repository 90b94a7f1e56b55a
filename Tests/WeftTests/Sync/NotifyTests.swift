import Testing
import Weft

@Suite("Notify")
struct SyncNotifyTests {
    @Test("notifyOne with nobody waiting is stored for the next notified()")
    func storedNotification() {
        let notify = Notify()
        notify.notifyOne()
        notify.notifyOne()  // at most one is stored
        var first = notify.notifiedFuture()
        var second = notify.notifiedFuture()
        #expect(pollFuture(&first).isReady)
        #expect(!pollFuture(&second).isReady)
    }

    @Test("notifyOne wakes the longest-waiting future first")
    func fifo() throws {
        let runtime = try Runtime()
        let notify = Notify()
        let order = Box<[Int]>([])
        let handles = (0..<3).map { index in
            runtime.spawn(notify.notifiedFuture().map { order.value.append(index) })
        }
        let driver = runtime.spawn(yields(2).then { _ in
            notify.notifyOne()
            return yields(2)
        }.then { _ in
            notify.notifyOne()
            notify.notifyOne()
            return yields(1)
        })
        _ = try runtime.guardedBlock(on: join(driver, joinAll(handles)))
        #expect(order.value == [0, 1, 2])
    }

    @Test("notifyWaiters wakes every future created before it, polled or not, and stores nothing")
    func notifyWaiters() {
        let notify = Notify()
        var polled = notify.notifiedFuture()
        var unpolled = notify.notifiedFuture()
        #expect(!pollFuture(&polled).isReady)
        notify.notifyWaiters()
        var later = notify.notifiedFuture()
        #expect(pollFuture(&polled).isReady)
        #expect(pollFuture(&unpolled).isReady)
        #expect(!pollFuture(&later).isReady)
    }

    @Test("a dropped notified future picked by notifyOne passes the notification on")
    func droppedWaiterPassesOn() {
        let notify = Notify()
        var dropped = notify.notifiedFuture()
        var kept = notify.notifiedFuture()
        #expect(!pollFuture(&dropped).isReady)
        #expect(!pollFuture(&kept).isReady)
        notify.notifyOne()  // picks `dropped`
        _ = consume dropped
        #expect(pollFuture(&kept).isReady)
        // Nobody left: a dropped pick with no waiter behind it is stored.
        var lonely = notify.notifiedFuture()
        #expect(!pollFuture(&lonely).isReady)
        notify.notifyOne()
        _ = consume lonely
        var next = notify.notifiedFuture()
        #expect(pollFuture(&next).isReady)
    }

    @Test("a future picked by notifyOne, or woken by notifyWaiters, and dropped unpolled after every other reference to its Notify is gone, touches no freed memory (its waiter read a freed Notify; ThreadSanitizer's and AddressSanitizer's runs check it)",
          arguments: [true, false])
    func pickedWaiterOutlivesItsNotify(one: Bool) {
        var notify: Notify? = Notify()
        weak let observed = notify
        var waiting: Notified? = notify!.notifiedFuture()
        #expect(!pollFuture(&waiting!).isReady)
        if one { notify!.notifyOne() } else { notify!.notifyWaiters() }
        notify = nil
        #expect(observed != nil, "the pending future keeps its Notify")
        waiting = nil  // its fields go, the Notify among them, then the waiter
        #expect(observed == nil)
    }

    @Test("a dropped pending notified future leaves the queue, so the next notification goes to the one behind it")
    func droppedPendingWaiterLeaves() {
        let notify = Notify()
        var dropped = notify.notifiedFuture()
        var kept = notify.notifiedFuture()
        #expect(!pollFuture(&dropped).isReady)
        #expect(!pollFuture(&kept).isReady)
        _ = consume dropped
        notify.notifyOne()
        #expect(pollFuture(&kept).isReady)
        var later = notify.notifiedFuture()
        #expect(!pollFuture(&later).isReady, "the one notification went to `kept`; nothing is stored")
    }

    @Test("waits in a row reuse one waiter yet each takes exactly one notification, and a pending copy keeps its own")
    func reusedWaiters() {
        let notify = Notify()
        for _ in 0..<1_000 {
            var waiting = notify.notifiedFuture()
            #expect(!pollFuture(&waiting).isReady)
            notify.notifyOne()
            #expect(pollFuture(&waiting).isReady)
        }
        // A copy shares the original's waiter, so that waiter is not recycled
        // when the original completes: a later future gets a fresh one.
        var original = notify.notifiedFuture()
        #expect(!pollFuture(&original).isReady)
        let copy = original
        notify.notifyOne()
        #expect(pollFuture(&original).isReady)
        var later = notify.notifiedFuture()
        #expect(!pollFuture(&later).isReady, "the original's notification was consumed; nothing is stored")
        withExtendedLifetime(copy) {}
        notify.notifyOne()
        #expect(pollFuture(&later).isReady)
    }

    @Test("a notification from a foreign thread wakes the loop")
    func foreignNotify() throws {
        let runtime = try Runtime()
        let notify = Notify()
        let latch = FirstPollLatch()
        let thread = ForeignThread {
            latch.waitForFirstPoll()
            notify.notifyOne()
        }
        defer { thread.join() }
        try runtime.guardedBlock(on: latch.watching(notify.notifiedFuture()))
        #expect(latch.waited, "notified at its first poll: the foreign wake was not tested")
    }

    @Test("two loops on two threads rally 20,000 notifications through two Notify objects and lose none")
    func crossThreadRally() throws {
        let ping = Notify()
        let pong = Notify()
        let rounds = 20_000
        let otherPlayed = Shared<Int?>(nil)
        let other = ForeignThread {
            let runtime = try? Runtime()
            let outcome = try? runtime?.block(on: timeoutFuture(.seconds(120), NotifyRally(mine: pong, theirs: ping, rounds: rounds, serves: false)))
            otherPlayed.value = try? outcome?.get()
        }
        let outcome = Result { () throws(WeftError) in
            // 120 s: 40,000 cross-thread wake-ups under ThreadSanitizer on a
            // loaded 2-core machine; a lost one waits for ever.
            try Runtime().block(on: timeoutFuture(.seconds(120), NotifyRally(mine: ping, theirs: pong, rounds: rounds, serves: true)))
        }
        other.join()
        #expect(try outcome.get().get() == rounds, "a lost wake-up ends in the timeout")
        #expect(otherPlayed.value == rounds)
    }

    @Test("notified() works from async code")
    func asyncNotified() throws {
        let runtime = try Runtime()
        let notify = Notify()
        notify.notifyOne()
        let done = try runtime.guardedBlock(on: AsyncFuture { () -> Bool in
            (try? await notify.notified()) != nil
        })
        #expect(done)
    }
}

/// Waits on `mine`, then notifies `theirs`, `rounds` times; the server
/// notifies first. Ready with the rounds played.
private struct NotifyRally: Future {
    let mine: Notify
    let theirs: Notify
    let rounds: Int
    let serves: Bool
    var played = 0
    var waiting: Notified?

    mutating func poll(_ context: inout Context) -> Poll<Int> {
        while true {
            if waiting == nil {
                if played == rounds { return .ready(played) }
                if serves && played == 0 { theirs.notifyOne() }
                waiting = mine.notifiedFuture()
            }
            guard case .ready = waiting!.poll(&context) else { return .pending }
            waiting = nil
            played += 1
            if !serves || played < rounds { theirs.notifyOne() }
        }
    }
}
