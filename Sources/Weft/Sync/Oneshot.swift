import CWeftSupport
import Synchronization

/// The part of a oneshot channel's shared state that does not depend on the
/// value's type: one atomic word and the receiver's waker. Non-generic, so the
/// sender's deinit (which runs unspecialised) never looks up generic metadata.
///
/// `@unchecked Sendable` is sound because every field is either atomic or
/// handed between threads by a bit of `state`:
/// - `receiverWaker` follows ``publishWaker(_:in:state:published:done:)``: the
///   receiver writes it only while ``receiverWakerBit`` is clear; a sender reads
///   it only after setting ``sentBit`` or ``senderGoneBit`` and seeing the bit
///   set in the previous state.
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

    /// Whether, with no value sent in `state`, none ever will be: the sender
    /// is gone, or the receiver closed before any send claimed the slot.
    @inlinable static func noValueWillCome(_ state: UInt32) -> Bool {
        state & senderGoneBit != 0 || state & (receiverClosedBit | claimedBit) == receiverClosedBit
    }

    @usableFromInline let state = Atomic<UInt32>(0)
    @exclusivity(unchecked) @usableFromInline final var receiverWaker: Waker?

    @inlinable init() {}
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
        // A closed receiver refuses the value. (A close that lands after the
        // claim comes too late: the value is delivered and can be received.)
        if state.load(ordering: .relaxed) & OneshotState.receiverClosedBit != 0 { return false }
        let claim = state.bitwiseOr(OneshotState.claimedBit, ordering: .acquiring).oldValue
        if claim & OneshotState.claimedBit != 0 { return false }
        // The slot is still the `nil` it was created with: overwrite it
        // without destroying that (saves a release call per send).
        withUnsafeMutablePointer(to: &slot) { $0.initialize(to: value.take()) }
        let previous = state.bitwiseOr(OneshotState.sentBit, ordering: .acquiringAndReleasing).oldValue
        if previous & OneshotState.receiverWakerBit != 0 { withUnsafeMutablePointer(to: &receiverWaker, wakeStoredWaker) }
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
        if previous & OneshotState.sentBit == 0, previous & OneshotState.receiverWakerBit != 0 {
            withUnsafeMutablePointer(to: &shared.receiverWaker, wakeStoredWaker)
        }
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
/// Poll it from one task at a time (copies share the value; the first poll
/// that finds it takes it, later ones see ``ChannelClosed``): unlike the other
/// receivers it keeps one waker, so a copy waiting in a second task replaces
/// the first task's. Wakeable from any thread.
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
        let done = OneshotState.sentBit | OneshotState.senderGoneBit
        while true {
            let current = shared.state.load(ordering: .acquiring)
            if current & OneshotState.sentBit != 0 {
                let previous = shared.state.bitwiseOr(OneshotState.takenBit, ordering: .acquiring).oldValue
                if previous & OneshotState.takenBit != 0 { return .ready(.failure(ChannelClosed())) }
                return .ready(.success(shared.slot.take()!))
            }
            if OneshotState.noValueWillCome(current) { return .ready(.failure(ChannelClosed())) }
            if !publishWaker(context.waker, in: &shared.receiverWaker, state: shared.state,
                             published: OneshotState.receiverWakerBit, done: done) {
                return .pending
            }
            // Sent or dropped while registering: look again.
        }
    }
}
