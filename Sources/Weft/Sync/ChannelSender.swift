import Synchronization

/// The sending half of a ``boundedChannel(of:capacity:)``. Usable from any
/// thread.
///
/// Copies share one counted handle; ``clone()`` makes a new counted handle. The
/// receiver's stream ends when every handle (every copy of every clone) is gone
/// and a pending ``sendFuture(_:)`` future counts as a copy, so a value in flight is
/// never cut off.
///
/// **Cancellation:** ``trySend(_:)`` never waits. A pending ``sendFuture(_:)`` future
/// holds its value; dropping it before the receiver made room drops the value
/// (it is never delivered half-way), so `send` is not cancel-safe: the value is
/// lost, or — if room was made before the drop — delivered. Use ``trySend(_:)``
/// when the value must be kept.
public struct ChannelSender<Value: Sendable>: Sendable {
    @usableFromInline let lifetime: SenderLifetime<ChannelShared<Value>>

    init(_ lifetime: SenderLifetime<ChannelShared<Value>>) {
        self.lifetime = lifetime
    }

    /// A new counted handle to the same channel.
    public func clone() -> ChannelSender {
        ChannelSender(SenderLifetime(lifetime.shared, isFirst: false))
    }

    /// A future that delivers `value`, waiting while the buffer is full; ready
    /// with `.failure(SendError)` (the value back) once the receiver is gone
    /// or has closed the channel (``ChannelReceiver/close()``).
    @inlinable
    public func sendFuture(_ value: Value) -> ChannelSend<Value> {
        ChannelSend(lifetime: lifetime, value: value)
    }

    /// A future of a ``SendPermit``: waits for room like ``sendFuture(_:)``
    /// (in the same queue), then holds one slot until the permit sends, which
    /// never waits (Tokio's `Sender::reserve`). Ready with ``ChannelClosed``
    /// once the receiver is gone or has closed the channel.
    ///
    /// **Cancellation:** cancel-safe: dropping it gives its place, or a slot
    /// already reserved, to the next waiting sender.
    public func reserveFuture() -> ChannelReserve<Value> {
        ChannelReserve(lifetime: lifetime)
    }

    /// Delivers `value` if there is room now; hands it back otherwise, in a
    /// result to look at (not discardable: a full channel is an outcome to
    /// branch on, and a `try` before this call, which throws nothing, dropped
    /// the value with only a warning).
    @inlinable
    public func trySend(_ value: Value) -> Result<Void, TrySendError<Value>> {
        lifetime.shared.trySend(value)
    }

    /// Whether the receiver is gone or has closed the channel (every send
    /// would fail).
    public var isClosed: Bool {
        lifetime.shared.state.withLock { !$0.acceptsSends }
    }
}

/// The future returned by ``ChannelSender/sendFuture(_:)``.
///
/// Poll it from one task: a copy made after its first poll shares its place
/// among the waiting senders, and only the task that polled last is woken.
///
/// **Cancellation:** see ``ChannelSender``: dropping it while it waits for room
/// removes it from the queue of waiting senders and drops its value.
public struct ChannelSend<Value: Sendable>: Future {
    /// Keeps the channel open while the send is pending.
    @usableFromInline let lifetime: SenderLifetime<ChannelShared<Value>>
    @usableFromInline var value: Value?
    @usableFromInline var waiting: ChannelSendWaiter<Value>?

    @inlinable
    init(lifetime: SenderLifetime<ChannelShared<Value>>, value: Value) {
        self.lifetime = lifetime
        self.value = value
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Void, SendError<Value>>> {
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        let shared = lifetime.shared
        if let waiting {
            let node = waiting.node
            return shared.state.withLock { state in
                if node.payload.isDelivered { return .ready(.success(())) }
                if node.payload.isClosed { return .ready(.failure(SendError(node.payload.value.take()!))) }
                node.waker.register(context.waker)
                return Budget.refundingIfPending(.pending)
            }
        }
        guard let value = value.take() else { preconditionFailure("ChannelSend polled after it completed") }
        var receivers = WaitingWakers()
        let poll = shared.state.withLock { state -> Poll<Result<Void, SendError<Value>>> in
            guard state.acceptsSends else { return .ready(.failure(SendError(value))) }
            if state.hasRoom(capacity: shared.capacity) {
                state.buffer.append(value)
                receivers = state.receivers.take()
                return .ready(.success(()))
            }
            let node = WaitNode(ChannelShared<Value>.PendingSend(value: value))
            node.waker = context.waker
            state.waitingSenders.append(node)
            waiting = ChannelSendWaiter(shared: shared, node: node)
            return Budget.refundingIfPending(.pending)
        }
        receivers.wakeAll()
        return poll
    }
}

/// A waiting send's place in the queue; its deinit (the send future dropped)
/// takes it out, so no receiver ever waits on a sender that is gone.
@usableFromInline
final class ChannelSendWaiter<Value: Sendable> {
    @usableFromInline let shared: ChannelShared<Value>
    @usableFromInline let node: WaitNode<ChannelShared<Value>.PendingSend>

    @inlinable
    init(shared: ChannelShared<Value>, node: WaitNode<ChannelShared<Value>.PendingSend>) {
        self.shared = shared
        self.node = node
    }

    deinit {
        let (dropped, slotFreed) = shared.state.withLock { state -> (Value?, Bool) in
            state.waitingSenders.remove(node)
            node.waker = nil
            // A reservation served after its future was last polled: nobody
            // holds the slot it reserved.
            let unclaimed = node.payload.isReservation && node.payload.isDelivered && !node.payload.isPermitTaken
            return (node.payload.value.take(), unclaimed)
        }
        _ = dropped  // dies outside the lock
        if slotFreed { shared.releaseReserved() }
    }
}

/// The sending half of an ``unboundedChannel(of:)``. Usable from any thread;
/// sending never waits.
///
/// Copies share one counted handle; ``clone()`` makes a new counted handle. The
/// receiver's stream ends when every handle is gone.
///
/// **Cancellation:** sending never waits, so there is nothing to cancel.
public struct UnboundedSender<Value: Sendable>: Sendable {
    @usableFromInline let lifetime: SenderLifetime<ChannelShared<Value>>

    init(_ lifetime: SenderLifetime<ChannelShared<Value>>) {
        self.lifetime = lifetime
    }

    /// A new counted handle to the same channel.
    public func clone() -> UnboundedSender {
        UnboundedSender(SenderLifetime(lifetime.shared, isFirst: false))
    }

    /// Delivers `value`; throws, handing it back, when the receiver is gone
    /// or has closed the channel.
    @inlinable
    public func send(_ value: Value) throws(SendError<Value>) {
        if case .failure(let error) = lifetime.shared.trySend(value) { throw SendError(error.value) }
    }

    /// Whether the receiver is gone or has closed the channel (every send
    /// would fail).
    public var isClosed: Bool {
        lifetime.shared.state.withLock { !$0.acceptsSends }
    }
}

/// One slot of a bounded channel, reserved by ``ChannelSender/reserveFuture()``
/// (or `reserve()` from `async` code): ``send(_:)`` fills it without waiting.
/// Dropping the permit unused frees the slot for the next waiting sender. It
/// keeps the channel open (it counts as a sender) until it is used or dropped.
public final class SendPermit<Value: Sendable>: Sendable {
    /// The sender handle it counts as, until it is used (then nil).
    private let lifetime: Locked<SenderLifetime<ChannelShared<Value>>?>

    init(lifetime: SenderLifetime<ChannelShared<Value>>) {
        self.lifetime = Locked(lifetime)
    }

    deinit {
        if let unused = lifetime.withLock({ $0.take() }) { unused.shared.releaseReserved() }
    }

    /// Puts `value` in the reserved slot. Throws, handing `value` back, when
    /// the receiver is gone, or when this permit was used already (a permit
    /// sends once). A receiver's ``ChannelReceiver/close()`` after the slot was
    /// reserved does not stop it (Tokio's permits, likewise). Once it has sent, the permit no longer keeps the channel
    /// open: with no other sender left, the receiver gets `value`, then the end.
    public func send(_ value: Value) throws(SendError<Value>) {
        guard let held = lifetime.withLock({ $0.take() }) else { throw SendError(value) }
        if case .failure(let error) = held.shared.sendReserved(value) { throw error }
    }
}

/// The future returned by ``ChannelSender/reserveFuture()``.
///
/// Poll it from one task: a copy made after its first poll shares its place
/// among the waiting senders, and the one slot it is given; polled again
/// after it completed, or once a copy returned the permit, it traps.
///
/// **Cancellation:** cancel-safe; see ``ChannelSender/reserveFuture()``.
public struct ChannelReserve<Value: Sendable>: Future {
    let lifetime: SenderLifetime<ChannelShared<Value>>
    var waiting: ChannelSendWaiter<Value>?
    /// Set when it yields its result (a permit, or the channel closed).
    var isDone = false

    init(lifetime: SenderLifetime<ChannelShared<Value>>) {
        self.lifetime = lifetime
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<SendPermit<Value>, ChannelClosed>> {
        precondition(!isDone, "ChannelReserve polled after it completed")
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        let shared = lifetime.shared
        // Whether a slot is ours (true) or the receiver is gone (false).
        let granted: Poll<Bool>
        if let waiting {
            let node = waiting.node
            granted = shared.state.withLock { state in
                if node.payload.isDelivered {
                    // Its one slot went into the permit already: a second
                    // permit for it would let the channel hold one value more
                    // than its capacity, for good.
                    precondition(!node.payload.isPermitTaken, "ChannelReserve polled after it completed")
                    node.payload.isPermitTaken = true
                    return .ready(true)
                }
                if node.payload.isClosed { return .ready(false) }
                node.waker.register(context.waker)
                return .pending
            }
        } else {
            granted = shared.state.withLock { state in
                guard state.acceptsSends else { return .ready(false) }
                if state.hasRoom(capacity: shared.capacity) {
                    state.reserved += 1
                    return .ready(true)
                }
                let node = WaitNode(ChannelShared<Value>.PendingSend(reservation: ()))
                node.waker = context.waker
                state.waitingSenders.append(node)
                waiting = ChannelSendWaiter(shared: shared, node: node)
                return .pending
            }
        }
        switch granted {
        case .pending: return Budget.refundingIfPending(.pending)  // the one refund (two gave a unit more)
        case .ready(let isGranted):
            isDone = true
            return .ready(isGranted ? .success(SendPermit(lifetime: lifetime)) : .failure(ChannelClosed()))
        }
    }
}
