/// What a watch channel's senders and receivers share: the latest value, its
/// version, and the wakers of receivers waiting for a change.
final class WatchShared<Value: Sendable>: SubscribedChannelShared {
    struct State: SubscribedChannelState {
        var value: Value
        /// Incremented by each send.
        var version: UInt64 = 0
        var wakers = SubscriptionWakers()
        /// Counted sender handles alive.
        var senderCount = 1
        /// Subscriptions alive.
        var receiverCount = 0
        /// Senders waiting in ``WatchSender/closedFuture()`` for the last receiver to go.
        var closedWaiters = WaitingWakers()
    }

    let state: Locked<State>

    init(_ value: Value) {
        state = Locked(State(value: value))
    }

    func subscribe() -> WatchReceiver<Value> {
        let subscription = WatchSubscription(self)
        let version = state.withLock { state -> UInt64 in
            state.receiverCount += 1
            return state.version
        }
        subscription.seenVersion = version
        return WatchReceiver(subscription: subscription)
    }
}

/// One receiver: which version it has seen, and its waker's key.
///
/// `@unchecked Sendable`: `seenVersion` is written before the subscription is
/// shared and afterwards only under `shared.state`'s lock.
final class WatchSubscription<Value: Sendable>: @unchecked Sendable {
    let shared: WatchShared<Value>
    var seenVersion: UInt64 = 0

    init(_ shared: WatchShared<Value>) { self.shared = shared }

    deinit {
        let id = ObjectIdentifier(self)
        var forgotten: WaitingWakers?  // let go after the lock (see `WaitingWakers.LetGo`)
        var closedWaiters = shared.state.withLock { state -> WaitingWakers in
            state.receiverCount -= 1
            forgotten = state.wakers.remove(id)
            guard state.receiverCount == 0 else { return WaitingWakers() }
            defer { state.closedWaiters = WaitingWakers() }
            return state.closedWaiters
        }
        _ = consume forgotten
        closedWaiters.wakeAll()
    }

    /// The latest value if it changed since last seen (marking it seen),
    /// `.ready(nil)` when every sender is gone, else pending with `waker`
    /// registered.
    func pollChange(_ waker: Waker) -> Poll<Value?> {
        guard Budget.consume(orWaking: waker) else { return .pending }
        let id = ObjectIdentifier(self)
        var letGo: WaitingWakers.LetGo?
        defer { letGo?.wake() }  // after the lock
        return shared.state.withLock { state in
            if state.version != seenVersion {
                seenVersion = state.version
                return .ready(state.value)
            }
            if state.senderCount == 0 { return .ready(nil) }
            letGo = state.wakers.register(waker, for: id)
            return Budget.refundingIfPending(.pending)
        }
    }
}

/// Creates a watch channel holding one value, starting with `initial`: senders
/// replace it; receivers read the latest and wait for changes, skipping
/// intermediate values they were too slow to see.
public func watchChannel<Value: Sendable>(initial: Value) -> (WatchSender<Value>, WatchReceiver<Value>) {
    let shared = WatchShared(initial)
    return (WatchSender(SenderLifetime(shared, isFirst: true)), shared.subscribe())
}

/// The sending half of a ``watchChannel(initial:)``. Usable from any thread;
/// sending never waits.
///
/// Copies share one counted handle; ``clone()`` makes a new counted handle.
/// Once every handle is gone, receivers' `changed()` fails with
/// ``ChannelClosed`` and their streams end.
///
/// **Cancellation:** sending never waits, so there is nothing to cancel.
public struct WatchSender<Value: Sendable>: Sendable {
    let lifetime: SenderLifetime<WatchShared<Value>>

    init(_ lifetime: SenderLifetime<WatchShared<Value>>) {
        self.lifetime = lifetime
    }

    /// A new counted handle to the same channel.
    public func clone() -> WatchSender {
        WatchSender(SenderLifetime(lifetime.shared, isFirst: false))
    }

    /// A new receiver; the current value counts as seen.
    public func subscribe() -> WatchReceiver<Value> {
        lifetime.shared.subscribe()
    }

    /// Whether every receiver is gone (every send would fail).
    public var isClosed: Bool {
        lifetime.shared.state.withLock { $0.receiverCount == 0 }
    }

    /// Replaces the value and wakes every receiver waiting for a change. Throws,
    /// handing `value` back, when no receiver is left (the value is not stored).
    public func send(_ value: Value) throws(SendError<Value>) {
        var replaced: Value?
        let outcome = lifetime.shared.state.withLock { state -> (sent: Bool, wakers: [WaitingWakers]) in
            guard state.receiverCount > 0 else { return (false, []) }
            replaced = state.value
            state.value = value
            state.version &+= 1
            return (true, state.takeWaiting())
        }
        _ = replaced  // dies outside the lock
        for var receivers in outcome.wakers { receivers.wakeAll() }
        if !outcome.sent { throw SendError(value) }
    }

    /// A future ready once every receiver is gone (Tokio's `Sender::closed`):
    /// a producer can stop computing values nobody will see.
    ///
    /// **Cancellation:** dropping it loses nothing.
    public func closedFuture() -> WatchSenderClosed<Value> {
        WatchSenderClosed(shared: lifetime.shared)
    }

    /// The latest value.
    public var current: Value {
        lifetime.shared.state.withLock { $0.value }
    }
}

/// The receiving half of a ``watchChannel(initial:)``.
///
/// As a stream it yields the latest value each time it changed since last
/// seen (intermediate values may be skipped), and ends once every sender is
/// gone. Copies share what they have seen (a ``resubscribe()`` has its own):
/// copies waiting in several tasks are all woken by a change, the first to
/// look takes it and the others wait for the next. Usable from any thread.
///
/// **Cancellation:** cancel-safe. A change is marked seen only by a poll that
/// reports it, so dropping a pending ``changedFuture()`` or `next()` future loses
/// nothing.
public struct WatchReceiver<Value: Sendable>: PollStream, Sendable {
    let subscription: WatchSubscription<Value>

    public mutating func pollNext(_ context: inout Context) -> Poll<Value?> {
        subscription.pollChange(context.waker)
    }

    /// The latest value, without marking it seen.
    public var current: Value {
        subscription.shared.state.withLock { $0.value }
    }

    /// The latest value, marking it seen (a later ``changed()`` waits for a newer one).
    public func currentMarkingSeen() -> Value {
        let subscription = self.subscription
        return subscription.shared.state.withLock { state in
            subscription.seenVersion = state.version
            return state.value
        }
    }

    /// Whether a value was sent since this receiver last saw one.
    public var hasChanged: Bool {
        let subscription = self.subscription
        return subscription.shared.state.withLock { $0.version != subscription.seenVersion }
    }

    /// A future ready when a value newer than the last seen is sent (marking it
    /// seen), or with ``ChannelClosed`` once every sender is gone.
    public func changedFuture() -> WatchChanged<Value> {
        WatchChanged(subscription: subscription)
    }

    /// A new receiver of its own; the current value counts as seen.
    public func resubscribe() -> WatchReceiver {
        subscription.shared.subscribe()
    }
}

/// The future returned by ``WatchReceiver/changedFuture()``.
///
/// **Cancellation:** cancel-safe; see ``WatchReceiver``.
public struct WatchChanged<Value: Sendable>: Future, Sendable {
    let subscription: WatchSubscription<Value>

    public mutating func poll(_ context: inout Context) -> Poll<Result<Void, ChannelClosed>> {
        switch subscription.pollChange(context.waker) {
        case .pending: return .pending
        case .ready(.some): return .ready(.success(()))
        case .ready(.none): return .ready(.failure(ChannelClosed()))
        }
    }
}

/// The future returned by ``WatchSender/closedFuture()``: ready once no
/// receiver is left.
public struct WatchSenderClosed<Value: Sendable>: Future, Sendable {
    let shared: WatchShared<Value>

    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        var letGo: WaitingWakers.LetGo?
        defer { letGo?.wake() }  // after the lock
        return shared.state.withLock { state in
            if state.receiverCount == 0 { return .ready(()) }
            letGo = state.closedWaiters.register(context.waker)
            return .pending
        }
    }
}
