import Testing
import Weft

/// A waiting list keeps at most 256 wakers that cannot tell when their wait is
/// over (a user's own wakers); the next one takes the place of the oldest,
/// which is woken. It used to be woken under the primitive's lock: a waker
/// that uses the primitive at once (a user's executor may poll inline when
/// woken) then locked it again on the same thread and deadlocked, or trapped.
@Suite("What a waiting list lets go is woken and released after the primitive's lock")
struct EvictedWakerTests {
    /// Polls `pollPending` with 257 wakers of their own, each time expecting
    /// pending; the first waker, let go when the 257th comes, calls `reenter`.
    static func expectEvictedWakerReenters(
        sourceLocation: SourceLocation = #_sourceLocation,
        pollPending: (inout Context) -> Bool,
        reenter: @escaping @Sendable () -> Void
    ) {
        let reentered = Shared(false)
        let othersWoken = AtomicCounter()
        for index in 0...256 {
            let waker = index == 0
                ? Waker { reenter(); reentered.value = true }
                : Waker { _ = othersWoken.increment() }
            var context = Context(waker: waker)
            #expect(pollPending(&context), "poll \(index) was ready", sourceLocation: sourceLocation)
        }
        #expect(reentered.value, "the first waker was not let go and woken", sourceLocation: sourceLocation)
        #expect(othersWoken.value == 0, sourceLocation: sourceLocation)
    }

    @Test("a channel's receiver")
    func channelReceiver() {
        let (sender, receiver) = unboundedChannel(of: Int.self)
        var polled = receiver
        Self.expectEvictedWakerReenters(pollPending: { context in
            if case .pending = polled.pollNext(&context) { return true }
            return false
        }, reenter: { _ = receiver.count })
        _ = consume sender
    }

    @Test("a broadcast receiver")
    func broadcastReceiver() {
        let (sender, receiver) = broadcastChannel(of: Int.self, capacity: 4)
        var polled = receiver
        Self.expectEvictedWakerReenters(pollPending: { context in
            if case .pending = polled.pollNext(&context) { return true }
            return false
        }, reenter: {
            var copy = receiver
            _ = copy.tryReceive()
        })
        _ = consume sender
    }

    @Test("a watch receiver's changed() and its sender's closed()")
    func watch() {
        let (sender, receiver) = watchChannel(initial: 0)
        Self.expectEvictedWakerReenters(pollPending: { context in
            var changed = receiver.changedFuture()
            if case .pending = changed.poll(&context) { return true }
            return false
        }, reenter: { _ = receiver.hasChanged })
        Self.expectEvictedWakerReenters(pollPending: { context in
            var closed = sender.closedFuture()
            if case .pending = closed.poll(&context) { return true }
            return false
        }, reenter: { _ = sender.isClosed })
        _ = receiver
    }

    @Test("a finished task's waker that a channel's waiting list forgets is released after the lock: the task's output held a sender of that channel, and its release under the lock locked it again")
    func finishedTaskForgottenAfterTheLock() throws {
        let runtime = try Runtime()
        let (sender, receiver) = unboundedChannel(of: Int.self)
        do {
            let clone = sender.clone()
            // Waits on the receiver once, then finishes with the clone as its
            // output; the handle is dropped, so its waker holds the last
            // reference to the task.
            _ = runtime.spawn(select(either: receiver.next(), or: sleepFuture(for: .milliseconds(1))).map { _ in clone })
        }
        try runtime.block(on: sleepFuture(for: .milliseconds(20)))
        var polled = receiver
        var context = Context(waker: Waker {})
        #expect(polled.pollNext(&context) == .pending)  // the list forgets the finished task's waker
        #expect(!sender.isClosed)
    }
}
