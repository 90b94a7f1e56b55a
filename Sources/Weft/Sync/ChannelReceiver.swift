/// Creates a bounded multi-producer, single-consumer channel holding at most
/// `capacity` values (at least 1). A send waits while the buffer is full
/// (backpressure), and waiting senders get room in the order they arrived.
///
/// ```swift
/// let (sender, receiver) = boundedChannel(of: Int.self, capacity: 64)
/// ```
public func boundedChannel<Value: Sendable>(of type: Value.Type = Value.self, capacity: Int) -> (ChannelSender<Value>, ChannelReceiver<Value>) {
    precondition(capacity >= 1, "a bounded channel needs a capacity of at least 1")
    let shared = ChannelShared<Value>(capacity: capacity)
    return (ChannelSender(SenderLifetime(shared, isFirst: true)), ChannelReceiver(ChannelReceiverLifetime(shared)))
}

/// Creates an unbounded multi-producer, single-consumer channel: sends never
/// wait (and memory grows while the receiver falls behind).
public func unboundedChannel<Value: Sendable>(of type: Value.Type = Value.self) -> (UnboundedSender<Value>, ChannelReceiver<Value>) {
    let shared = ChannelShared<Value>(capacity: .max)
    return (UnboundedSender(SenderLifetime(shared, isFirst: true)), ChannelReceiver(ChannelReceiverLifetime(shared)))
}

/// The receiving half of a ``boundedChannel(of:capacity:)`` or
/// ``unboundedChannel(of:)``: a stream of the values sent, in the order each
/// sender sent them, ending (`nil`) once the buffer is empty and every sender
/// is gone, or the receiver closed the channel (``close()``). Use `.values` for an `AsyncSequence`, or ``receive()``.
///
/// Copies share the queue and the liveness: sends fail once every copy is
/// gone. Copies may wait in several tasks at once: a send wakes every waiting
/// task, one of them takes the value and the others wait again. Wakeable from
/// any thread.
///
/// **Cancellation:** cancel-safe. A value leaves the channel only in the poll
/// that returns it, so dropping a pending `next()` future or cancelling
/// ``receive()`` loses nothing. Dropping the last copy of the receiver drops
/// what is buffered and hands every waiting sender its value back.
public struct ChannelReceiver<Value: Sendable>: PollStream, Sendable {
    @usableFromInline let lifetime: ChannelReceiverLifetime<Value>

    init(_ lifetime: ChannelReceiverLifetime<Value>) {
        self.lifetime = lifetime
    }

    /// Takes the next value; uses the task's cooperative ``Budget``, yielding
    /// (wake, then `.pending`) once it is spent.
    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Value?> {
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        return Budget.refundingIfPending(lifetime.shared.pollReceive(registering: context.waker))
    }

    /// Takes a buffered value without waiting: `nil` when none is buffered.
    public func tryReceive() -> Value? {
        if case .ready(let value?) = lifetime.shared.pollReceive(registering: nil) { return value }
        return nil
    }

    /// Values buffered now.
    public var count: Int { lifetime.shared.count }

    /// Closes the channel for sending without dropping the receiver (Tokio's
    /// `Receiver::close`), to stop producers and still take what they sent:
    /// from now on every send and reservation fails, handing its value back,
    /// and so do the sends waiting for room; what is buffered stays, to be
    /// received, and so may a permit reserved before the close still send.
    /// The stream then ends (`nil`) once the buffer is empty and those
    /// permits are used or dropped. Copies share it; closing again does nothing.
    public func close() {
        lifetime.shared.closeForSending()
    }

    /// Whether no new value can be sent: ``close()`` was called, or every
    /// sender is gone. Values buffered, or sent through a permit reserved
    /// before the close, may still come (Tokio's `is_closed`).
    public var isClosed: Bool { lifetime.shared.sendsHaveEnded }

    /// A future of up to `limit` values: it waits for the first, then takes
    /// whatever else is buffered (Tokio's `recv_many`); empty once every
    /// sender is gone and nothing is left. A `limit` below 1 counts as 1.
    public func next(many limit: Int) -> NextMany<Value> {
        NextMany(receiver: self, limit: max(limit, 1))
    }
}

/// The future returned by ``ChannelReceiver/next(many:)``.
///
/// **Cancellation:** cancel-safe, like ``ChannelReceiver``: values leave the
/// channel only in the poll that returns them.
public struct NextMany<Value: Sendable>: Future, Sendable {
    var receiver: ChannelReceiver<Value>
    let limit: Int

    public mutating func poll(_ context: inout Context) -> Poll<[Value]> {
        guard case .ready(let first) = receiver.pollNext(&context) else { return .pending }
        guard let first else { return .ready([]) }
        var values = [first]
        while values.count < limit, let value = receiver.tryReceive() { values.append(value) }
        return .ready(values)
    }
}
