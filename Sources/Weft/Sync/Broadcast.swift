/// What a broadcast channel's senders and receivers share: the last `capacity`
/// messages and the wakers of receivers waiting for the next one.
final class BroadcastShared<Value: Sendable>: SubscribedChannelShared {
    struct State: SubscribedChannelState {
        /// Message `n` sits at `slots[n % capacity]` while `n >= nextSequence - capacity`.
        var slots: [Value?]
        /// The sequence number the next message gets.
        var nextSequence: UInt64 = 0
        /// Wakers of receivers waiting for `nextSequence`, by subscription.
        var wakers = SubscriptionWakers()
        /// Counted sender handles alive.
        var senderCount = 1
        /// Subscriptions alive (copies of a receiver share one).
        var receiverCount = 0
    }

    let capacity: Int
    let state: Locked<State>

    init(capacity: Int) {
        self.capacity = capacity
        state = Locked(State(slots: Array(repeating: nil, count: capacity)))
    }

    func subscribe() -> BroadcastReceiver<Value> {
        let subscription = BroadcastSubscription(self)
        let next = state.withLock { state -> UInt64 in
            state.receiverCount += 1
            return state.nextSequence
        }
        return BroadcastReceiver(subscription: subscription, nextSequence: next)
    }
}

/// One receiver's registration: counts it as alive and keys its waker.
final class BroadcastSubscription<Value: Sendable>: Sendable {
    let shared: BroadcastShared<Value>
    init(_ shared: BroadcastShared<Value>) { self.shared = shared }

    deinit {
        let id = ObjectIdentifier(self)
        // Its waiting wakers are let go after the lock (see `WaitingWakers.LetGo`).
        let forgotten = shared.state.withLock { state in
            state.receiverCount -= 1
            return state.wakers.remove(id)
        }
        _ = consume forgotten
    }
}

/// Creates a broadcast channel: every receiver sees every message sent after
/// it subscribed, as long as it keeps up. The channel keeps the last
/// `capacity` messages; a receiver that falls further behind is told how many
/// it missed (``BroadcastEvent/lagged(missed:)``) and continues with the
/// oldest message still kept.
///
/// ```swift
/// let (sender, first) = broadcastChannel(of: String.self, capacity: 16)
/// let second = sender.subscribe()
/// ```
public func broadcastChannel<Value: Sendable>(of type: Value.Type = Value.self, capacity: Int) -> (BroadcastSender<Value>, BroadcastReceiver<Value>) {
    precondition(capacity >= 1, "a broadcast channel needs a capacity of at least 1")
    let shared = BroadcastShared<Value>(capacity: capacity)
    return (BroadcastSender(SenderLifetime(shared, isFirst: true)), shared.subscribe())
}

/// What a broadcast receiver gets: a message, or the news that it fell behind.
public enum BroadcastEvent<Value: Sendable>: Sendable {
    /// The next message.
    case message(Value)
    /// The receiver fell more than the channel's capacity behind: `missed`
    /// messages were overwritten before it saw them. The next event is the
    /// oldest message still kept.
    case lagged(missed: Int)
}

extension BroadcastEvent: Equatable where Value: Equatable {}

/// The sending half of a ``broadcastChannel(of:capacity:)``. Usable from any
/// thread; sending never waits (slow receivers lag instead).
///
/// Copies share one counted handle; ``clone()`` makes a new counted handle.
/// Receivers' streams end once every handle is gone and they have read
/// everything.
///
/// **Cancellation:** sending never waits, so there is nothing to cancel.
public struct BroadcastSender<Value: Sendable>: Sendable {
    let lifetime: SenderLifetime<BroadcastShared<Value>>

    init(_ lifetime: SenderLifetime<BroadcastShared<Value>>) {
        self.lifetime = lifetime
    }

    /// A new counted handle to the same channel.
    public func clone() -> BroadcastSender {
        BroadcastSender(SenderLifetime(lifetime.shared, isFirst: false))
    }

    /// A new receiver that sees every message sent from now on.
    public func subscribe() -> BroadcastReceiver<Value> {
        lifetime.shared.subscribe()
    }

    /// Sends `value` to every receiver and returns how many there are; throws,
    /// handing the value back, when there is none.
    @discardableResult
    public func send(_ value: Value) throws(SendError<Value>) -> Int {
        let shared = lifetime.shared
        var overwritten: Value?
        let outcome = shared.state.withLock { state -> (receivers: Int, wakers: [WaitingWakers]) in
            guard state.receiverCount > 0 else { return (0, []) }
            let slot = Int(state.nextSequence % UInt64(shared.capacity))
            overwritten = state.slots[slot].take()
            state.slots[slot] = value
            state.nextSequence += 1
            return (state.receiverCount, state.takeWaiting())
        }
        _ = overwritten  // dies outside the lock
        for var receivers in outcome.wakers { receivers.wakeAll() }
        guard outcome.receivers > 0 else { throw SendError(value) }
        return outcome.receivers
    }

    /// Receivers alive now.
    public var receiverCount: Int {
        lifetime.shared.state.withLock { $0.receiverCount }
    }
}

/// The receiving half of a ``broadcastChannel(of:capacity:)``: a stream of
/// ``BroadcastEvent``s, ending (`nil`) once every sender is gone and every
/// kept message was read.
///
/// The read position lives in the struct: a copy continues independently from
/// where the original was. Copies share one subscription, and may wait in
/// several tasks at once (a message wakes each of them); for a receiver
/// counted on its own, call ``resubscribe()`` or ``BroadcastSender/subscribe()``.
///
/// **Cancellation:** cancel-safe. The read position advances only when a poll
/// returns an event, so dropping a pending `next()` future, or cancelling
/// ``receive()``, loses nothing.
public struct BroadcastReceiver<Value: Sendable>: PollStream, Sendable {
    let subscription: BroadcastSubscription<Value>
    /// The sequence number of the next message this receiver reads.
    var nextSequence: UInt64

    public mutating func pollNext(_ context: inout Context) -> Poll<BroadcastEvent<Value>?> {
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        return Budget.refundingIfPending(receive(registering: context.waker))
    }

    /// The next event without waiting: `.some(nil)` once every sender is gone
    /// and everything was read, `nil` when no message is there yet (Tokio's
    /// `try_recv`).
    public mutating func tryReceive() -> BroadcastEvent<Value>?? {
        if case .ready(let event) = receive(registering: nil) { return .some(event) }
        return nil
    }

    /// The next event, or pending with `waker` (if any) registered.
    private mutating func receive(registering waker: Waker?) -> Poll<BroadcastEvent<Value>?> {
        let shared = subscription.shared
        let id = ObjectIdentifier(subscription)
        let capacity = UInt64(shared.capacity)
        var letGo: WaitingWakers.LetGo?
        defer { letGo?.wake() }  // after the lock
        return shared.state.withLock { state in
            if nextSequence < state.nextSequence {
                let oldest = state.nextSequence > capacity ? state.nextSequence - capacity : 0
                if nextSequence < oldest {
                    let missed = Int(oldest - nextSequence)
                    nextSequence = oldest
                    return .ready(.lagged(missed: missed))
                }
                let value = state.slots[Int(nextSequence % capacity)]!
                nextSequence += 1
                return .ready(.message(value))
            }
            if state.senderCount == 0 { return .ready(nil) }
            if let waker { letGo = state.wakers.register(waker, for: id) }
            return .pending
        }
    }

    /// A new receiver of its own, reading from the next message sent.
    public func resubscribe() -> BroadcastReceiver {
        subscription.shared.subscribe()
    }
}
