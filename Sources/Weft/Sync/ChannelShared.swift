/// What a multi-producer channel's senders and receiver share: the buffer, the
/// senders waiting for room (bounded channels), and the receiver's waker.
@usableFromInline
final class ChannelShared<Value: Sendable>: CountedSenders {
    /// A sender waiting for room: its value sits in the node until the receiver
    /// moves it into the buffer (so waiting senders are served in FIFO order).
    /// A reservation (``ChannelSender/reserveFuture()``) waits in the same
    /// queue with no value: serving it reserves a slot instead.
    @usableFromInline
    struct PendingSend {
        @usableFromInline var value: Value?
        /// Set when the receiver moved `value` into the buffer (or reserved
        /// the slot of a reservation).
        @usableFromInline var isDelivered = false
        /// Set when the channel closed first (the receiver went away, or
        /// closed it); `value` is still here.
        @usableFromInline var isClosed = false
        /// A reservation: no value; served by reserving a slot.
        @usableFromInline var isReservation = false
        /// A served reservation's slot was handed to a ``SendPermit``.
        @usableFromInline var isPermitTaken = false

        @inlinable
        init(value: Value) { self.value = value }

        @inlinable
        init(reservation: Void) {
            self.value = nil
            self.isReservation = true
        }
    }

    @usableFromInline
    struct State {
        @usableFromInline let buffer = RingBuffer<Value>(capacity: State.initialCapacity)
        /// The buffer's first capacity, which it shrinks back to once drained.
        @usableFromInline static var initialCapacity: Int { 16 }
        /// Senders waiting for room, oldest first; empty unless the buffer is full.
        @usableFromInline var waitingSenders = WaitList<PendingSend>()
        /// Every task waiting to receive: copies of the receiver may wait in
        /// several tasks at once, and each is woken (a single slot would keep
        /// only the last, and the others could wait forever).
        @usableFromInline var receivers = WaitingWakers()
        /// Counted sender handles alive (see `SenderLifetime`).
        @usableFromInline var senderCount = 1
        /// Cleared when the last copy of the receiver is gone.
        @usableFromInline var isReceiverAlive = true
        /// Set by ``ChannelReceiver/close()``: no new send or reservation,
        /// while what is buffered (and what reserved slots send) is received.
        @usableFromInline var isClosedForSending = false
        /// Slots held by reservations (``SendPermit``s not used yet).
        @usableFromInline var reserved = 0

        @inlinable
        init() {}

        /// Whether a new send or reservation may go in: the receiver is
        /// there and has not closed the channel.
        @inlinable
        var acceptsSends: Bool { isReceiverAlive && !isClosedForSending }

        /// Whether the receiver has had every value it will get, once the
        /// buffer is empty: no sender (nor permit) is left, or the channel was
        /// closed and no reserved slot can still send.
        @inlinable
        var isFinished: Bool {
            waitingSenders.isEmpty && (senderCount == 0 || (isClosedForSending && reserved == 0))
        }

        /// Takes every waiting sender and reservation out of the queue, each
        /// marked closed (its value still in its node), and returns their wakers.
        @usableFromInline
        mutating func closeWaitingSenders() -> [Waker] {
            waitingSenders.removeAll().compactMap { sender in
                sender.payload.isClosed = true
                return sender.waker.take()
            }
        }

        /// Whether a send or reservation may take a slot now (no one queued first).
        @inlinable
        func hasRoom(capacity: Int) -> Bool {
            buffer.count + reserved < capacity && waitingSenders.isEmpty
        }

        /// Gives a freed slot to the oldest waiting sender: moves its value into
        /// the buffer, or reserves the slot for a reservation. Returns its waker.
        @inlinable
        mutating func serveFirstWaitingSender() -> Waker? {
            guard let sender = waitingSenders.popFirst() else { return nil }
            if sender.payload.isReservation {
                reserved += 1
            } else {
                buffer.append(sender.payload.value.take()!)
            }
            sender.payload.isDelivered = true
            return sender.waker.take()
        }
    }

    /// `Int.max` for an unbounded channel.
    @usableFromInline let capacity: Int
    @usableFromInline let state = Locked(State())

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Delivers `value` without waiting, or hands it back.
    @inlinable
    func trySend(_ value: Value) -> Result<Void, TrySendError<Value>> {
        var (result, receivers) = state.withLock { state -> (Result<Void, TrySendError<Value>>, WaitingWakers) in
            guard state.acceptsSends else { return (.failure(.closed(value)), WaitingWakers()) }
            guard state.hasRoom(capacity: capacity) else {
                return (.failure(.full(value)), WaitingWakers())
            }
            state.buffer.append(value)
            return (.success(()), state.receivers.take())
        }
        receivers.wakeAll()
        return result
    }

    /// The receiver's poll: the next value, `nil` once empty with every sender
    /// gone, or pending with `waker` (if any) registered.
    @inlinable
    func pollReceive(registering waker: Waker?) -> Poll<Value?> {
        var senderToWake: Waker?
        let poll = state.withLock { state -> Poll<Value?> in
            guard let value = state.buffer.popFirst() else { return .pending }
            senderToWake = state.serveFirstWaitingSender()
            return .ready(value)
        }
        guard case .ready = poll else { return pollReceiveWaiting(registering: waker) }
        senderToWake?.wake()
        return poll
    }

    /// ``pollReceive(registering:)`` when the buffer was empty at its first
    /// look: looks again and ends or registers, under one lock (a value may
    /// have come in between). Apart, so that the common path, a value
    /// buffered, carries nothing of the registration (what the waiting list
    /// lets go): with it inline, a message through a bounded channel cost
    /// 30 ns instead of 21 (`weft-bench channel`).
    @usableFromInline @inline(never)
    func pollReceiveWaiting(registering waker: Waker?) -> Poll<Value?> {
        var senderToWake: Waker?
        var letGo: WaitingWakers.LetGo?
        let poll = state.withLock { state -> Poll<Value?> in
            if let value = state.buffer.popFirst() {
                senderToWake = state.serveFirstWaitingSender()
                return .ready(value)
            }
            // Caught up: what a burst made the buffer grow to goes back.
            state.buffer.shrinkIfEmpty(to: State.initialCapacity)
            if state.isFinished { return .ready(nil) }
            if let waker { letGo = state.receivers.register(waker) }
            return .pending
        }
        senderToWake?.wake()
        letGo?.wake()
        return poll
    }

    /// Whether the buffer is empty.
    var isEmpty: Bool { state.withLock { $0.buffer.isEmpty } }

    /// Values buffered now.
    var count: Int { state.withLock { $0.buffer.count } }

    /// Closes the channel for sending (``ChannelReceiver/close()``): the
    /// waiting senders get their values back, and waiting receivers look again.
    func closeForSending() {
        var receivers = WaitingWakers()
        let senders = state.withLock { state -> [Waker] in
            guard state.acceptsSends else { return [] }
            state.isClosedForSending = true
            receivers = state.receivers.take()
            return state.closeWaitingSenders()
        }
        wakeAll(senders)
        receivers.wakeAll()
    }

    /// Whether no new value can be sent: the channel was closed, or every
    /// sender is gone.
    var sendsHaveEnded: Bool {
        state.withLock { $0.isClosedForSending || $0.senderCount == 0 }
    }

    @usableFromInline
    func senderAdded() {
        state.withLock { $0.senderCount += 1 }
    }

    @usableFromInline
    func senderRemoved() -> [WaitingWakers] {
        state.withLock { state -> [WaitingWakers] in
            state.senderCount -= 1
            return state.senderCount == 0 ? [state.receivers.take()] : []
        }
    }
}

/// The receiver's liveness: its deinit makes sends fail, hands waiting senders
/// their values back, and drops what was buffered.
@usableFromInline
final class ChannelReceiverLifetime<Value: Sendable>: Sendable {
    @usableFromInline let shared: ChannelShared<Value>
    init(_ shared: ChannelShared<Value>) { self.shared = shared }

    deinit {
        var dropped: [Value] = []
        var receivers = WaitingWakers()  // let go after the lock, as the values
        let wakers = shared.state.withLock { state -> [Waker] in
            state.isReceiverAlive = false
            receivers = state.receivers.take()
            while let value = state.buffer.popFirst() { dropped.append(value) }
            return state.closeWaitingSenders()
        }
        wakeAll(wakers)
        dropped.removeAll()  // values die outside the lock
        _ = consume receivers
    }
}

extension ChannelShared {
    /// A permit's send: the reserved slot takes `value`, after a
    /// ``ChannelReceiver/close()`` too (the slot was reserved before it).
    func sendReserved(_ value: Value) -> Result<Void, SendError<Value>> {
        var (result, receivers) = state.withLock { state -> (Result<Void, SendError<Value>>, WaitingWakers) in
            state.reserved -= 1
            guard state.isReceiverAlive else { return (.failure(SendError(value)), WaitingWakers()) }
            state.buffer.append(value)
            return (.success(()), state.receivers.take())
        }
        receivers.wakeAll()
        return result
    }

    /// A permit dropped unused: its slot goes to the next waiting sender, and
    /// the receiver is woken when that sender's value went into the buffer,
    /// or when the last slot reserved before a close let the stream end.
    func releaseReserved() {
        var (sender, receivers) = state.withLock { state -> (Waker?, WaitingWakers) in
            state.reserved -= 1
            guard state.isReceiverAlive else { return (nil, WaitingWakers()) }
            let buffered = state.buffer.count
            let sender = state.serveFirstWaitingSender()
            let wakesReceivers = state.buffer.count > buffered || (state.isFinished && state.buffer.isEmpty)
            return (sender, wakesReceivers ? state.receivers.take() : WaitingWakers())
        }
        sender?.wake()
        receivers.wakeAll()
    }
}
