import CWeftSupport
import Synchronization

/// The non-generic part of a task: what the executor, wakers and handles need
/// without knowing the future's type.
///
/// A task is one allocation: this header, the output slot (``TaskOutputCell``) and
/// the future stored inline (``TaskCell``). The executor reaches the typed part
/// through `vtable`, a closure built where the future's type is known, so a poll
/// never goes through an unspecialised generic method (DESIGN.md, "Futures in
/// Swift").
///
/// Sendable because its mutable fields are confined: the registry links, the
/// future and the vtable are touched only on the loop thread of the runtime that
/// owns the task; other threads only use `state` (atomic), `remote` (a lock), and
/// the join slot under the `TaskState.joinWaker` protocol, which hands the slot to
/// exactly one side at a time.
@usableFromInline
class TaskHeader: Wakeable, @unchecked Sendable {
    @usableFromInline enum Operation { case poll, cancel(JoinError.Reason) }

    /// `TaskState` bits.
    @usableFromInline let state: Atomic<UInt32>
    /// Where the task runs. Valid while the task is not complete: a runtime
    /// completes (cancels) every task before it goes away.
    @usableFromInline unowned(unsafe) let core: LoopCore
    /// The inbox for wakes from other threads; kept alive by the task so that a
    /// late foreign wake after shutdown finds a closed inbox, not freed memory.
    @usableFromInline let remote: RemoteScheduler
    /// Polls or cancels the typed task.
    @usableFromInline let vtable: (TaskHeader, Operation) -> Void
    /// The waker of whoever awaits the `JoinHandle` (see `TaskState.joinWaker`).
    @usableFromInline var joinWaker: Waker?
    /// Links in the runtime's registry of live tasks, which holds one reference.
    @exclusivity(unchecked) var registryNext: Unmanaged<TaskHeader>?
    @exclusivity(unchecked) var registryPrevious: Unmanaged<TaskHeader>?

    @usableFromInline
    init(core: LoopCore, vtable: @escaping (TaskHeader, Operation) -> Void) {
        self.state = Atomic(TaskState.scheduled)
        self.core = core
        self.remote = core.remote
        self.vtable = vtable
    }

    /// Schedules the task: a plain enqueue on its loop thread, the inbox elsewhere.
    @usableFromInline
    final func wake() {
        let previous = state.bitwiseOr(TaskState.scheduled, ordering: .acquiringAndReleasing).oldValue
        if previous & (TaskState.scheduled | TaskState.complete) != 0 { return }
        if weft_current_runtime() == Unmanaged.passUnretained(core).toOpaque() {
            core.enqueueLocal(self)
        } else {
            remote.enqueue(self)
        }
    }

    /// Whether the output is stored; never polled again after this.
    @inlinable
    final var isComplete: Bool {
        state.load(ordering: .acquiring) & TaskState.complete != 0
    }

    /// Runs the task once on its loop thread: polls it, or drops its future if
    /// an abort was requested.
    final func run() {
        let previous = state.bitwiseAnd(~TaskState.scheduled, ordering: .acquiringAndReleasing).oldValue
        if previous & TaskState.complete != 0 { return }
        if previous & TaskState.cancelRequested != 0 {
            vtable(self, .cancel(.aborted))
        } else {
            vtable(self, .poll)
        }
    }

    /// Marks the task complete (its output already stored), wakes whoever awaits
    /// it, and drops the registry's reference.
    @usableFromInline
    final func markComplete() {
        let previous = state.bitwiseOr(TaskState.complete, ordering: .acquiringAndReleasing).oldValue
        if previous & TaskState.joinWaker != 0 {
            joinWaker?.wake()
        }
        core.taskDidComplete(self)
    }

    /// Requests cancellation: the task's future is dropped the next time it runs.
    @usableFromInline
    final func abort() {
        let previous = state.bitwiseOr(TaskState.cancelRequested, ordering: .acquiringAndReleasing).oldValue
        if previous & (TaskState.complete | TaskState.cancelRequested) == 0 {
            wake()
        }
    }

    /// The join half of the protocol: returns true when the output is ready to
    /// take; otherwise `waker` is registered to be woken on completion.
    @usableFromInline
    final func registerJoinWaker(_ waker: Waker) -> Bool {
        var current = state.load(ordering: .acquiring)
        if current & TaskState.complete != 0 { return true }
        if current & TaskState.joinWaker != 0 {
            // The slot is published; the completer may read it but never writes it.
            if let stored = joinWaker, stored.willWake(waker) { return false }
            // Take the slot back before replacing the waker.
            while true {
                let (exchanged, original) = state.compareExchange(
                    expected: current, desired: current & ~TaskState.joinWaker,
                    ordering: .acquiringAndReleasing)
                if exchanged { current &= ~TaskState.joinWaker; break }
                if original & TaskState.complete != 0 { return true }
                current = original
            }
        }
        joinWaker = waker
        while true {
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: current | TaskState.joinWaker,
                ordering: .acquiringAndReleasing)
            if exchanged { return false }
            if original & TaskState.complete != 0 { return true }
            current = original
        }
    }
}

/// The part of a task that knows its output type: the slot a `JoinHandle` reads.
@usableFromInline
class TaskOutputCell<Output>: TaskHeader, @unchecked Sendable {
    /// Written once on the loop thread before `complete` is set; read by the
    /// handle after it observes `complete`.
    @usableFromInline var output: Result<Output, JoinError>?

    @usableFromInline
    override init(core: LoopCore, vtable: @escaping (TaskHeader, Operation) -> Void) {
        super.init(core: core, vtable: vtable)
    }

    @inlinable
    final func finish(_ result: Result<Output, JoinError>) {
        output = result
        markComplete()
    }
}

/// A task with its future stored inline.
@usableFromInline
final class TaskCell<F: Future>: TaskOutputCell<F.Output>, @unchecked Sendable {
    /// The future; `nil` once it completed or was cancelled (dropping it is the
    /// cancellation, invariant 5). Touched only on the loop thread.
    @exclusivity(unchecked) @usableFromInline var future: F?

    @inlinable
    init(_ future: F, core: LoopCore) {
        self.future = future
        super.init(core: core, vtable: { header, operation in
            unsafeDowncast(header, to: TaskCell<F>.self).perform(operation)
        })
    }

    @inlinable
    func perform(_ operation: Operation) {
        switch operation {
        case .poll:
            var context = Context(waker: Waker(self))
            if case .ready(let value) = future!.poll(&context) {
                future = nil
                finish(.success(value))
            }
        case .cancel(let reason):
            future = nil
            finish(.failure(JoinError(reason)))
        }
    }
}
