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
    /// Set while `joinWaker` holds the waker of whoever awaits the handle. Only the
    /// handle writes `joinWaker`, and only while this bit is clear; the completer
    /// only reads it, after setting `complete`.
    @usableFromInline static let joinWaker: UInt32 = 1 << 3
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
