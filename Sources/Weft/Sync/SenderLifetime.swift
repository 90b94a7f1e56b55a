/// The state of a channel whose sender handles are counted: when the last one
/// goes, the receivers are woken to see the channel end (mpsc, broadcast,
/// watch).
@usableFromInline
protocol CountedSendersState {
    /// Counted sender handles alive.
    var senderCount: Int { get set }
    /// Takes the wakers of the waiting receivers (the last sender is gone).
    mutating func takeReceiverWakers() -> [Waker]
}

/// A channel's shared state, guarding a ``CountedSendersState``.
@usableFromInline
protocol CountedSendersShared: AnyObject, Sendable {
    associatedtype State: CountedSendersState
    var state: Locked<State> { get }
}

/// One counted sender handle: copies of a sender share it, `clone()` makes a
/// new one. When the last one goes, every waiting receiver is woken to see the
/// channel end.
@usableFromInline
final class SenderLifetime<Shared: CountedSendersShared>: Sendable {
    @usableFromInline let shared: Shared

    /// A new counted handle; `shared` counts the first one already.
    init(_ shared: Shared, isFirst: Bool) {
        self.shared = shared
        if !isFirst { shared.state.withLock { $0.senderCount += 1 } }
    }

    deinit {
        let wakers = shared.state.withLock { state -> [Waker] in
            state.senderCount -= 1
            return state.senderCount == 0 ? state.takeReceiverWakers() : []
        }
        wakeAll(wakers)
    }
}

/// The state of a channel whose receivers each register a waker under their
/// subscription's identity (broadcast and watch).
protocol SubscribedChannelState: CountedSendersState {
    /// Wakers of waiting receivers, by subscription.
    var wakers: [ObjectIdentifier: Waker] { get set }
}

extension SubscribedChannelState {
    mutating func takeReceiverWakers() -> [Waker] {
        defer { wakers.removeAll() }
        return Array(wakers.values)
    }
}
