/// The state a oneshot channel's two halves share.
@usableFromInline
final class OneshotCore<Value: Sendable>: Sendable {
    @usableFromInline
    struct State {
        /// The sent value, until the receiver takes it.
        @usableFromInline var value: Value?
        /// Set by the first `send`; later sends fail.
        @usableFromInline var isSent = false
        /// Set when the last copy of the sender is gone.
        @usableFromInline var isSenderGone = false
        /// Set when the last copy of the receiver is gone; sends fail after this.
        @usableFromInline var isReceiverGone = false
        @usableFromInline var receiverWaker: Waker?

        @inlinable init() {}
    }

    @usableFromInline let state = Locked(State())

    @inlinable init() {}
}

/// Owns the sender's liveness: its deinit tells the receiver no value will come.
@usableFromInline
final class OneshotSenderLifetime<Value: Sendable>: Sendable {
    @usableFromInline let core: OneshotCore<Value>
    @inlinable init(_ core: OneshotCore<Value>) { self.core = core }
    deinit {
        core.state.withLock { state -> Waker? in
            state.isSenderGone = true
            return state.receiverWaker.take()
        }?.wake()
    }
}

/// Owns the receiver's liveness: its deinit makes later sends fail.
@usableFromInline
final class OneshotReceiverLifetime<Value: Sendable>: Sendable {
    @usableFromInline let core: OneshotCore<Value>
    @inlinable init(_ core: OneshotCore<Value>) { self.core = core }
    deinit {
        let dropped = core.state.withLock { state -> Value? in
            state.isReceiverGone = true
            return state.value.take()
        }
        _ = dropped  // the undelivered value dies here, outside the lock
    }
}

/// Creates a channel that carries one value from a sender to a receiver
/// (Tokio's `oneshot`).
///
/// ```swift
/// let (reply, replied) = oneshotChannel(of: Int.self)
/// runtime.spawn(pollFn { _ in _ = reply.send(42); return .ready(()) })
/// let answer = try runtime.block(on: replied)   // .success(42)
/// ```
@inlinable
public func oneshotChannel<Value: Sendable>(of type: Value.Type = Value.self) -> (OneshotSender<Value>, OneshotReceiver<Value>) {
    let core = OneshotCore<Value>()
    return (OneshotSender(lifetime: OneshotSenderLifetime(core)), OneshotReceiver(lifetime: OneshotReceiverLifetime(core)))
}

/// The sending half of a oneshot channel. Usable from any thread.
///
/// Copies share one handle: the receiver sees ``ChannelClosed`` once every copy
/// is gone without having sent. Only the first ``send(_:)`` delivers.
///
/// **Cancellation:** sending never waits, so there is nothing to cancel.
public struct OneshotSender<Value: Sendable>: Sendable {
    @usableFromInline let lifetime: OneshotSenderLifetime<Value>

    @inlinable init(lifetime: OneshotSenderLifetime<Value>) { self.lifetime = lifetime }

    /// Delivers `value` and wakes the receiver. Fails, handing `value` back, when
    /// the receiver is gone or a value was already sent.
    @inlinable @discardableResult
    public func send(_ value: Value) -> Result<Void, SendError<Value>> {
        var value: Value? = value
        let outcome = lifetime.core.state.withLock { state -> (sent: Bool, waker: Waker?) in
            if state.isReceiverGone || state.isSent { return (false, nil) }
            state.isSent = true
            state.value = value.take()
            return (true, state.receiverWaker.take())
        }
        outcome.waker?.wake()
        return outcome.sent ? .success(()) : .failure(SendError(value!))
    }

    /// Whether the receiver is gone (a send would fail).
    public var isClosed: Bool {
        lifetime.core.state.withLock { $0.isReceiverGone }
    }
}

/// The receiving half of a oneshot channel: a future of the value, or of
/// ``ChannelClosed`` when the sender is dropped without sending.
///
/// Poll it from one task at a time (copies share the value; the first poll
/// that finds it takes it). Wakeable from any thread.
///
/// **Cancellation:** cancel-safe. The value is taken only by a poll that
/// returns it, so dropping a pending receive future (or cancelling `receive()`)
/// loses nothing: another copy of the receiver still gets the value. When the
/// last copy is dropped, a value already sent is dropped and later sends fail.
public struct OneshotReceiver<Value: Sendable>: Future, Sendable {
    @usableFromInline let lifetime: OneshotReceiverLifetime<Value>

    @inlinable init(lifetime: OneshotReceiverLifetime<Value>) { self.lifetime = lifetime }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Value, ChannelClosed>> {
        lifetime.core.state.withLock { state in
            if let value = state.value.take() { return .ready(.success(value)) }
            if state.isSenderGone || state.isSent { return .ready(.failure(ChannelClosed())) }
            state.receiverWaker.register(context.waker)
            return .pending
        }
    }

    /// The value, awaited from `async` code; ``ChannelClosed`` when the sender was
    /// dropped without sending.
    ///
    /// **Cancellation:** cancel-safe (see the type); throws `CancellationError`.
    nonisolated(nonsending)
    public func receive() async throws(CancellationError) -> Result<Value, ChannelClosed> {
        try await Weft.value(transferring: Transfer(value: self)).value
    }
}
