/// The bits of a task's atomic state word. Every transition is one atomic
/// read-modify-write, so wakes, aborts and completion may race from any thread.
@usableFromInline
enum TaskState {
    /// Set by a wake while the task sits in the ready queue or the inbox; cleared
    /// just before the task is polled. Makes waking idempotent (docs/ARCHITECTURE.md, invariant 3).
    @usableFromInline static let scheduled: UInt32 = 1 << 0
    /// Set once, when the output (or the cancellation) is stored and the future
    /// dropped. After this the task is never polled again and wakes are ignored.
    @usableFromInline static let complete: UInt32 = 1 << 1
    /// Set by `JoinHandle.abort()`; the next time the task runs its future is
    /// dropped instead of polled.
    @usableFromInline static let cancelRequested: UInt32 = 1 << 2
    /// Set while `joinWaker` holds the waker of whoever awaits the handle,
    /// published for the completer. Cleared by a poll that takes
    /// `joinRegistering`, in the same step.
    @usableFromInline static let joinWaker: UInt32 = 1 << 3
    /// Held by the one poll of a copy of the handle that is changing
    /// `joinWaker` (or by the loop's stuck check reading it). Taken only while
    /// `complete` is clear, so the completer, which sets `complete` and finds
    /// `joinWaker` published, owns the slot from then on: it wakes the waker
    /// and drops it (no task keeps an awaiting task alive after it finished).
    @usableFromInline static let joinRegistering: UInt32 = 1 << 4
    /// Set by the one poll that takes the output; a second take traps.
    @usableFromInline static let outputTaken: UInt32 = 1 << 5
}

/// Why a task ended without producing its output.
public struct JoinError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What stopped the task.
    public enum Reason: Sendable, Equatable {
        /// `JoinHandle.abort()` was called.
        case aborted
        /// The runtime was shut down (or dropped) while the task was pending.
        case runtimeShutDown
    }

    /// What stopped the task.
    public let reason: Reason

    /// An error for `reason`.
    public init(_ reason: Reason) { self.reason = reason }

    public var description: String {
        switch reason {
        case .aborted: return "task was aborted"
        case .runtimeShutDown: return "task was cancelled because its runtime shut down"
        }
    }
}
