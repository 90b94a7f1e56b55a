/// The shared state of a channel whose sender handles are counted: when the
/// last one goes, the receivers are woken to see the channel end (mpsc,
/// broadcast, watch).
@usableFromInline
protocol CountedSenders: AnyObject, Sendable {
    /// One more counted sender handle.
    func senderAdded()
    /// One fewer; returns the waiting receivers, taken, when it was the last
    /// (the caller wakes them outside the lock).
    func senderRemoved() -> [WaitingWakers]
}

/// One counted sender handle: copies of a sender share it, `clone()` makes a
/// new one. When the last one goes, every waiting receiver is woken to see the
/// channel end.
@usableFromInline
final class SenderLifetime<Shared: CountedSenders>: Sendable {
    @usableFromInline let shared: Shared

    /// A new counted handle; `shared` counts the first one already.
    init(_ shared: Shared, isFirst: Bool) {
        self.shared = shared
        if !isFirst { shared.senderAdded() }
    }

    deinit {
        for var receivers in shared.senderRemoved() { receivers.wakeAll() }
    }
}

/// The state of a channel whose receivers each register a waker under their
/// subscription's identity (broadcast and watch).
protocol SubscribedChannelState {
    /// Counted sender handles alive.
    var senderCount: Int { get set }
    /// The tasks waiting to receive, by subscription (copies of a receiver
    /// share one, and several of them may wait at once).
    var wakers: SubscriptionWakers { get set }
}

/// The tasks waiting to receive from a broadcast or watch channel, by
/// subscription, woken in the order each subscription began to wait.
struct SubscriptionWakers {
    private var waiting = ArrivalOrdered<WaitingWakers>()

    /// Keeps `waker` among subscription `id`'s (see ``WaitingWakers/register(_:)``).
    mutating func register(_ waker: Waker, for id: ObjectIdentifier) -> WaitingWakers.LetGo? {
        waiting.update(id, initial: WaitingWakers()) { $0.register(waker) }
    }

    /// Forgets subscription `id` (gone), returning its wakers to let go.
    mutating func remove(_ id: ObjectIdentifier) -> WaitingWakers? {
        waiting.remove(id)
    }

    /// Takes every subscription's waiting tasks, in the order they began to wait.
    mutating func takeAll() -> [WaitingWakers] {
        waiting.takeAll()
    }
}

/// The shared state of a broadcast or watch channel, guarding a
/// ``SubscribedChannelState``: its senders are counted the same way.
protocol SubscribedChannelShared: CountedSenders {
    associatedtype State: SubscribedChannelState
    var state: Locked<State> { get }
}

extension SubscribedChannelState {
    /// Takes the waiting receivers of every subscription, to wake after the
    /// lock is released.
    mutating func takeWaiting() -> [WaitingWakers] {
        wakers.takeAll()
    }
}

extension SubscribedChannelShared {
    func senderAdded() {
        state.withLock { $0.senderCount += 1 }
    }

    func senderRemoved() -> [WaitingWakers] {
        state.withLock { state -> [WaitingWakers] in
            state.senderCount -= 1
            return state.senderCount == 0 ? state.takeWaiting() : []
        }
    }
}
