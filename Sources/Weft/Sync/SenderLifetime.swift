/// The state of a channel whose receivers each register a waker under their
/// subscription's identity, and which ends for them when every counted sender
/// handle is gone (broadcast and watch).
protocol SubscribedChannelState {
    /// Counted sender handles alive.
    var senderCount: Int { get set }
    /// Wakers of waiting receivers, by subscription.
    var wakers: [ObjectIdentifier: Waker] { get set }
}

/// A channel core guarding a ``SubscribedChannelState``.
protocol SubscribedChannelCore: AnyObject, Sendable {
    associatedtype State: SubscribedChannelState
    var state: Locked<State> { get }
}

/// One counted sender handle: copies of a sender share it, `clone()` makes a
/// new one. When the last one goes, every waiting receiver is woken to see the
/// channel end.
final class SenderLifetime<Core: SubscribedChannelCore>: Sendable {
    let core: Core

    init(_ core: Core, isFirst: Bool) {
        self.core = core
        if !isFirst { core.state.withLock { $0.senderCount += 1 } }
    }

    deinit {
        let wakers = core.state.withLock { state -> [Waker] in
            state.senderCount -= 1
            guard state.senderCount == 0 else { return [] }
            defer { state.wakers.removeAll() }
            return Array(state.wakers.values)
        }
        wakeAll(wakers)
    }
}
