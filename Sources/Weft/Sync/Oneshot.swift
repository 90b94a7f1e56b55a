import CWeftSupport
import Synchronization

/// The part of a oneshot channel's shared state that does not depend on the
/// value's type: one atomic word and the receivers' wakers. Non-generic, so the
/// sender's deinit (which runs unspecialised) never looks up generic metadata.
///
/// Every task waiting on a copy of the receiver is kept (no silent hang): the
/// first in `receiverWaker`, lock-free, any other in `extraWakers`. See
/// ``registerReceiver(_:)``.
///
/// `@unchecked Sendable` is sound because every field is either atomic, under
/// a lock, or handed between threads by a bit of `state`:
/// - `receiverWaker` is written only by the receiver copy that holds
///   ``registeringBit`` (taken by compare-and-swap, so by one poll at a time)
///   and only while ``receiverWakerBit`` is clear; a sender reads it only
///   after setting ``sentBit`` or ``senderGoneBit`` and seeing
///   ``receiverWakerBit`` set in the previous state.
/// - `extraWakers` is set once, atomically, to a `Locked`; ``extraWakersBit`` is set while holding its
///   lock, after the waker is in, so a sender that sees the bit in the state
///   it replaced finds the waker under the lock.
/// - the subclass's `slot` is written by the one `send` that set ``claimedBit``,
///   before it publishes ``sentBit`` (release), and read by the one poll that
///   set ``takenBit`` after seeing ``sentBit`` (acquire).
@usableFromInline
class OneshotState: @unchecked Sendable {
    /// A send owns the value slot (set once; later sends fail).
    @usableFromInline static let claimedBit: UInt32 = 1 << 0
    /// The value is in the slot.
    @usableFromInline static let sentBit: UInt32 = 1 << 1
    /// A receive moved the value out.
    @usableFromInline static let takenBit: UInt32 = 1 << 2
    /// The last copy of the sender is gone.
    @usableFromInline static let senderGoneBit: UInt32 = 1 << 3
    /// `receiverWaker` is published.
    @usableFromInline static let receiverWakerBit: UInt32 = 1 << 4
    /// The receiver called `close()`: sends fail from now on.
    @usableFromInline static let receiverClosedBit: UInt32 = 1 << 5
    /// A poll of a receiver copy owns `receiverWaker` (is registering).
    @usableFromInline static let registeringBit: UInt32 = 1 << 6
    /// `extraWakers` holds a waker.
    @usableFromInline static let extraWakersBit: UInt32 = 1 << 7
    /// A value was sent or never will be: what wakes the receivers.
    @usableFromInline static let doneBits: UInt32 = sentBit | senderGoneBit

    /// Whether, with no value sent in `state`, none ever will be: the sender
    /// is gone, or the receiver closed before any send claimed the slot.
    @inlinable static func noValueWillCome(_ state: UInt32) -> Bool {
        state & senderGoneBit != 0 || state & (receiverClosedBit | claimedBit) == receiverClosedBit
    }

    @usableFromInline let state = Atomic<UInt32>(0)
    @exclusivity(unchecked) @usableFromInline final var receiverWaker: Waker?
    /// The tasks waiting on other copies of the receiver than the one whose
    /// task is in `receiverWaker`: made when a copy first waits in a second
    /// task, so a channel whose receiver waits in one task (nearly all) pays
    /// one word for it.
    @usableFromInline final let extraWakers = AtomicLazyReference<Locked<WaitingWakers>>()

    @inlinable init() {}

    /// Where `receiverWaker` lies in an instance, measured once on a probe
    /// (the class is not generic and not resilient: every instance lays its
    /// stored properties out alike, and an instance never moves).
    @usableFromInline static let receiverWakerOffset: Int = {
        let probe = OneshotState()
        let base = UnsafeRawPointer(Unmanaged.passUnretained(probe).toOpaque())
        return withUnsafeMutablePointer(to: &probe.receiverWaker) { UnsafeRawPointer($0) - base }
    }()

    /// The address of `receiverWaker`, for a sender to wake the waker in place
    /// (``wakeStoredWaker(_:)``: a plain read, no retain). Not `&receiverWaker`:
    /// that is a modifying access, which ThreadSanitizer reports as a race with
    /// a receiver copy's poll reading the published slot at the same moment,
    /// though neither writes it (the slot's protocol, above).
    @inlinable var receiverWakerAddress: UnsafeMutablePointer<Waker?> {
        (UnsafeMutableRawPointer(Unmanaged.passUnretained(self).toOpaque()) + Self.receiverWakerOffset)
            .assumingMemoryBound(to: Waker?.self)
    }

    /// Registers `waker` to be woken when a value is sent or the sender is
    /// gone; returns true, without registering, once that happened (look
    /// again). Any copy of the receiver may call it, from any thread.
    ///
    /// The poll that takes ``registeringBit`` owns `receiverWaker`: it writes
    /// it only while ``receiverWakerBit`` is clear, then publishes it; a
    /// waker for another task than the one kept there, or a poll that finds
    /// another copy registering at that moment, goes to `extraWakers`
    /// instead. So a copy polled in a second task never takes the first
    /// task's place. A kept task that finished (``Waker/isFinished``) is
    /// replaced rather than kept.
    @inlinable
    final func registerReceiver(_ waker: Waker) -> Bool {
        var current = state.load(ordering: .relaxed)
        while true {
            if current & Self.doneBits != 0 { return true }
            if current & Self.registeringBit != 0 { return registerExtra(waker) }
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: current | Self.registeringBit, ordering: .acquiring)
            if exchanged { break }
            current = original
        }
        current |= Self.registeringBit
        if current & Self.receiverWakerBit != 0 {
            // Published: a sender may read it, so compare, never write.
            if receiverWaker!.willWake(waker) { return releaseRegistering(done: false) }
            return registerBesideKept(waker, state: current)
        }
        return publishReceiverWaker(waker, state: current)
    }

    /// ``registerReceiver(_:)`` holding ``registeringBit``, with a published
    /// waker that is not `waker`'s: the kept task goes on waiting unless it
    /// finished.
    @usableFromInline
    final func registerBesideKept(_ waker: Waker, state current: UInt32) -> Bool {
        if !receiverWaker!.isFinished {
            _ = releaseRegistering(done: false)
            return registerExtra(waker)
        }
        // Take the slot back before replacing the finished task's waker.
        var current = current
        while true {
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: current & ~Self.receiverWakerBit, ordering: .acquiring)
            if exchanged { break }
            if original & Self.doneBits != 0 { return releaseRegistering(done: true) }
            current = original
        }
        return publishReceiverWaker(waker, state: current & ~Self.receiverWakerBit)
    }

    /// Writes `waker` to the unpublished slot and publishes it, giving up
    /// ``registeringBit`` in the same step; `current` is the state last seen.
    @inlinable
    final func publishReceiverWaker(_ waker: Waker, state current: UInt32) -> Bool {
        receiverWaker = waker
        var current = current
        while true {
            let desired = (current | Self.receiverWakerBit) & ~Self.registeringBit
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: desired, ordering: .acquiringAndReleasing)
            if exchanged { return false }
            if original & Self.doneBits != 0 { return releaseRegistering(done: true) }
            current = original
        }
    }

    /// Gives up ``registeringBit``; returns `done`.
    @inlinable
    final func releaseRegistering(done: Bool) -> Bool {
        state.bitwiseAnd(~Self.registeringBit, ordering: .releasing)
        return done
    }

    /// Keeps `waker` in `extraWakers`; true, as ``registerReceiver(_:)``, when
    /// a value was sent or the sender is gone before it was kept.
    @usableFromInline
    final func registerExtra(_ waker: Waker) -> Bool {
        let extra = extraWakers.load() ?? extraWakers.storeIfNil(Locked(WaitingWakers()))
        var letGo: WaitingWakers.LetGo?
        defer { letGo?.wake() }  // after the lock
        return extra.withLock { wakers in
            let previous = state.bitwiseOr(Self.extraWakersBit, ordering: .acquiringAndReleasing).oldValue
            if previous & Self.doneBits != 0 { return true }
            letGo = wakers.register(waker)
            return false
        }
    }

    /// Wakes every receiver that waits, given the state before the caller set
    /// a bit of ``doneBits``.
    @inlinable
    final func wakeReceivers(previous: UInt32) {
        if previous & Self.receiverWakerBit != 0 { wakeStoredWaker(receiverWakerAddress) }
        if previous & Self.extraWakersBit != 0 { wakeExtra() }
    }

    @usableFromInline
    final func wakeExtra() {
        // Made before the bit was set (see `registerExtra`).
        var waiting = extraWakers.load()!.withLock { $0.take() }
        waiting.wakeAll()
    }
}

/// The shared state with the value's slot. `Slot` is `Value?`: a generic
/// parameter rather than a type built from one, so the deinit that destroys it
/// finds its metadata in the class's own instead of looking it up.
@usableFromInline
final class OneshotShared<Slot>: OneshotState, @unchecked Sendable {
    @exclusivity(unchecked) @usableFromInline var slot: Slot

    @inlinable init(_ slot: Slot) {
        self.slot = slot
        super.init()
    }
}

extension OneshotShared {
    /// Moves `value` into the slot and wakes the receiver, unless another send
    /// claimed the slot first (then `value` stays put and this returns false).
    @inlinable
    func deliver<Value>(_ value: inout Value?) -> Bool where Slot == Value? {
        // A closed receiver refuses the value, in the same atomic step as the
        // claim: checked apart, a close landing between the two told the
        // receiver no value would come while the send went on and succeeded.
        // (A close that lands after the claim comes too late: the value is
        // delivered and can be received.)
        var observed = state.load(ordering: .relaxed)
        while true {
            if observed & (OneshotState.receiverClosedBit | OneshotState.claimedBit) != 0 { return false }
            let (exchanged, original) = state.weakCompareExchange(
                expected: observed, desired: observed | OneshotState.claimedBit,
                successOrdering: .acquiring, failureOrdering: .relaxed)
            if exchanged { break }
            observed = original
        }
        // The slot is still the `nil` it was created with: overwrite it
        // without destroying that (saves a release call per send).
        withUnsafeMutablePointer(to: &slot) { $0.initialize(to: value.take()) }
        let previous = state.bitwiseOr(OneshotState.sentBit, ordering: .acquiringAndReleasing).oldValue
        wakeReceivers(previous: previous)
        return true
    }
}

/// Held by every copy of a sender: its deinit tells the receiver that no value
/// will come, and the shared state's reference count tells it whether a receiver is
/// left (the receivers hold the shared state; this token is the only other holder).
///
/// `Sendable` because `shared` is.
@usableFromInline
final class OneshotSenderToken: Sendable {
    @usableFromInline let shared: OneshotState

    @inlinable init(_ shared: OneshotState) { self.shared = shared }

    /// True once every copy of the receiver is gone (the token's is then the
    /// only reference to the shared state; the receivers never hand theirs around).
    @inlinable var isReceiverGone: Bool {
        SwiftRuntime.isUniquelyReferenced(UnsafeRawPointer(Unmanaged.passUnretained(shared).toOpaque()))
    }

    deinit {
        // Once a value is sent the receiver no longer looks for the sender.
        if shared.state.load(ordering: .relaxed) & OneshotState.sentBit != 0 { return }
        let previous = shared.state.bitwiseOr(OneshotState.senderGoneBit, ordering: .acquiringAndReleasing).oldValue
        if previous & OneshotState.sentBit == 0 { shared.wakeReceivers(previous: previous) }
    }
}

/// Creates a channel that carries one value from a sender to a receiver
/// (Tokio's `oneshot`). Costs two allocations: the shared state and the sender's
/// token.
///
/// ```swift
/// let runtime = try Runtime()
/// let (reply, replied) = oneshotChannel(of: Int.self)
/// runtime.spawn(pollFn { _ in try? reply.send(42); return .ready(()) })
/// let answer = try runtime.block(on: replied)   // .success(42)
/// ```
@inlinable
public func oneshotChannel<Value: Sendable>(of type: Value.Type = Value.self) -> (OneshotSender<Value>, OneshotReceiver<Value>) {
    let shared = OneshotShared<Value?>(nil)
    return (OneshotSender(token: OneshotSenderToken(shared)), OneshotReceiver(shared: shared))
}

/// The sending half of a oneshot channel. Usable from any thread.
///
/// Copies share one handle: the receiver sees ``ChannelClosed`` once every copy
/// is gone without having sent. Only the first ``send(_:)`` delivers.
///
/// **Cancellation:** sending never waits, so there is nothing to cancel.
public struct OneshotSender<Value: Sendable>: Sendable {
    @usableFromInline let token: OneshotSenderToken

    @inlinable init(token: OneshotSenderToken) { self.token = token }

    /// Delivers `value` and wakes the receiver. Fails, handing `value` back, when
    /// the receiver is gone or a value was already sent.
    ///
    /// A receiver dropped while the send runs may miss a value the send reports
    /// as delivered; that value is destroyed once the sender is gone too.
    @inlinable
    public func send(_ value: consuming Value) throws(SendError<Value>) {
        if token.isReceiverGone { throw SendError(value) }
        var pending: Value? = value
        // The token holds the shared state for the whole call: borrow it, no retain.
        let delivered = Unmanaged.passUnretained(token.shared)._withUnsafeGuaranteedRef { state in
            unsafeDowncast(state, to: OneshotShared<Value?>.self).deliver(&pending)
        }
        if !delivered { throw SendError(pending!) }
    }

    /// Whether the receiver is gone or closed (a send would fail).
    @inlinable
    public var isClosed: Bool {
        token.isReceiverGone
            || token.shared.state.load(ordering: .relaxed) & OneshotState.receiverClosedBit != 0
    }
}

/// The receiving half of a oneshot channel: a future of the value, or of
/// ``ChannelClosed`` when the sender is dropped without sending.
///
/// Copies share the value: the first poll that finds it takes it, and later
/// ones (of any copy) see ``ChannelClosed``. Copies may wait in several tasks
/// at once, on any threads: every waiting task is woken when the value comes
/// or the sender goes. Wakeable from any thread.
///
/// **Cancellation:** cancel-safe. The value is taken only by a poll that
/// returns it, so dropping a pending receive future (or cancelling `receive()`)
/// loses nothing: another copy of the receiver still gets the value. When the
/// last copy is dropped, later sends fail; a value already sent is destroyed
/// with the channel, once the sender is gone too.
public struct OneshotReceiver<Value: Sendable>: Future, Sendable {
    @usableFromInline let shared: OneshotShared<Value?>

    @inlinable init(shared: OneshotShared<Value?>) { self.shared = shared }

    /// Refuses any value not sent yet (Tokio's `Receiver::close`): a later
    /// ``OneshotSender/send(_:)`` throws with its value and
    /// ``OneshotSender/isClosed`` is true. A value sent before stays
    /// receivable: poll the receiver or call ``tryReceive()``, which report
    /// ``ChannelClosed`` when there is none. Idempotent.
    ///
    /// It wakes nobody: call it from the task that polls the receiver. (A copy
    /// waiting in another task learns of it when the sender is dropped.)
    public func close() {
        shared.state.bitwiseOr(OneshotState.receiverClosedBit, ordering: .acquiringAndReleasing)
    }

    /// The value if it was sent, without waiting (taking it); ``ChannelClosed``
    /// once the sender is gone without sending or the value was taken; `nil`
    /// while the sender may still send (Tokio's `try_recv`).
    public func tryReceive() -> Result<Value, ChannelClosed>? {
        let current = shared.state.load(ordering: .acquiring)
        if current & OneshotState.sentBit != 0 {
            let previous = shared.state.bitwiseOr(OneshotState.takenBit, ordering: .acquiring).oldValue
            if previous & OneshotState.takenBit != 0 { return .failure(ChannelClosed()) }
            return .success(shared.slot.take()!)
        }
        return OneshotState.noValueWillCome(current) ? .failure(ChannelClosed()) : nil
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Value, ChannelClosed>> {
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        while true {
            let current = shared.state.load(ordering: .acquiring)
            if current & OneshotState.sentBit != 0 {
                let previous = shared.state.bitwiseOr(OneshotState.takenBit, ordering: .acquiring).oldValue
                if previous & OneshotState.takenBit != 0 { return .ready(.failure(ChannelClosed())) }
                return .ready(.success(shared.slot.take()!))
            }
            if OneshotState.noValueWillCome(current) { return .ready(.failure(ChannelClosed())) }
            if !shared.registerReceiver(context.waker) { return Budget.refundingIfPending(.pending) }
            // Sent or dropped while registering: look again.
        }
    }
}
