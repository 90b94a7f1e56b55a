import CWeftSupport
import Synchronization

/// A spawned task: its state word, its place in the runtime, and its future and
/// output slot (inline when small, else in an allocation of their own).
///
/// Kept at 120 bytes, so that with malloc's 8-byte header a task fills a
/// 128-byte chunk: glibc's fast bins stop there, and a million live tasks touch
/// a fifth fewer pages than at 144 bytes.
///
/// The class is not generic: the executor, wakers and handles use it without
/// knowing the future's type, and reach the typed payload through `vtable`, a
/// closure built where the type is known (Tokio's raw-task vtable). This keeps
/// every poll specialised (a protocol witness of `TaskSlots<F>` would not be: it
/// looks up generic metadata on every call), and keeps the deinit free of
/// generic-metadata lookups (a generic class's deinit looks up its field types'
/// metadata every time; measured at a third of the cost of a spawn).
///
/// Sendable because its mutable fields are confined: the registry index, the
/// payload and the vtable are touched only on the loop thread of the runtime that
/// owns the task; other threads only use `state` (atomic), `inbox` (a lock), and
/// the join slot under the `TaskState.joinWaker` protocol, which hands the slot to
/// exactly one side at a time. The output is taken from the payload only after
/// `complete` is observed (acquire), and it was stored before (release).
@usableFromInline
final class RawTask: FinishableWakeable, @unchecked Sendable {
    @usableFromInline enum Operation {
        /// Polls the future, adopting the ready queue's reference to the task
        /// (see `run(_:)`).
        case poll
        case cancel(JoinError.Reason)
        /// Moves the output into an `Optional<Result<Output, JoinError>>` at the pointer.
        case takeOutput(UnsafeMutableRawPointer)
        /// Deinitializes and frees the payload.
        case destroy
        /// Writes what the task runs (its name, or its future's type) into the
        /// `String?` at the pointer; for task dumps.
        case describe(UnsafeMutableRawPointer)
    }

    /// `TaskState` bits.
    @usableFromInline let state: Atomic<UInt32>
    /// The task's slot in the runtime's registry of live tasks (next to `state`,
    /// in what would be padding).
    @exclusivity(unchecked) var registryIndex: UInt32 = 0
    /// Where the task runs. Valid while the task is not complete: a runtime
    /// completes (cancels) every task before it goes away. Unmanaged because
    /// reading an `unowned(unsafe)` reference still retains it for each use.
    @usableFromInline let loop: Unmanaged<EventLoop>
    /// The inbox for wakes from other threads; kept alive by the task so that a
    /// late foreign wake after shutdown finds a closed inbox, not freed memory.
    @usableFromInline let inbox: WakeInbox
    /// The typed part, a `TaskSlots<F>`, when it fits (most spawns then cost one
    /// allocation); otherwise the address of its own allocation, freed in
    /// `deinit`. `TaskSlots<F>.in(_:)` knows which. The address is stable: a
    /// class instance never moves, and this stored property of a final class has
    /// no accessors or observers, so `&inlineStorage` is the property's own
    /// memory.
    @exclusivity(unchecked) @usableFromInline var inlineStorage: InlineTaskStorage = (0, 0, 0, 0, 0, 0)
    /// Performs an `Operation` on the typed payload.
    @usableFromInline let vtable: (RawTask, Operation) -> Void
    /// The waker of whoever awaits the `JoinHandle` (see `TaskState.joinWaker`).
    @exclusivity(unchecked) @usableFromInline var joinWaker: Waker?

    @usableFromInline
    init(loop: __shared EventLoop, vtable: @escaping (RawTask, Operation) -> Void) {
        self.state = Atomic(TaskState.scheduled)
        self.loop = Unmanaged.passUnretained(loop)
        self.inbox = loop.inbox
        self.vtable = vtable
    }

    deinit {
        perform(.destroy)
    }

    /// Performs `operation` on the typed payload.
    @inlinable
    final func perform(_ operation: Operation) {
        vtable(self, operation)
    }

    /// A task running `future` on `loop`, not yet registered.
    @inlinable
    static func make<F: Future>(_ future: consuming F, loop: EventLoop) -> RawTask {
        let task = RawTask(loop: loop, vtable: { task, operation in
            TaskSlots<F>.perform(task, operation)
        })
        let storage = task.inlineStorageAddress
        if !TaskSlots<F>.fitsInline {
            let layout = MemoryLayout<TaskSlots<F>>.self
            storage.storeBytes(of: UnsafeMutableRawPointer.allocate(byteCount: layout.size, alignment: layout.alignment),
                               as: UnsafeMutableRawPointer.self)
        }
        TaskSlots<F>.in(task).initialize(to: TaskSlots(future: future))
        return task
    }

    @inlinable
    var inlineStorageAddress: UnsafeMutableRawPointer {
        withUnsafeMutablePointer(to: &inlineStorage) { UnsafeMutableRawPointer($0) }
    }

    /// Schedules the task: a plain enqueue on its loop thread, the inbox elsewhere.
    @usableFromInline
    final func wake() {
        let previous = state.bitwiseOr(TaskState.scheduled, ordering: .acquiringAndReleasing).oldValue
        if previous & (TaskState.scheduled | TaskState.complete) != 0 { return }
        if weft_current_runtime() == loop.toOpaque() {
            loop._withUnsafeGuaranteedRef { $0.enqueueLocal(self) }
        } else {
            inbox.enqueue(self)
        }
    }

    /// Whether the output is stored; never polled again after this.
    @inlinable
    final var isComplete: Bool {
        state.load(ordering: .acquiring) & TaskState.complete != 0
    }

    /// A completed task's waker no longer matters (see `WaitingWakers`).
    var isFinished: Bool { isComplete }

    /// Runs a task taken from the ready queue once, on its loop thread: polls
    /// it, or drops its future if an abort was requested. Consumes the queue's
    /// reference: a poll hands it to the waker in the poll's `Context` (so a
    /// poll costs no retain), and that waker is the last use of the task.
    static func run(_ queued: Unmanaged<RawTask>) {
        let polled = queued._withUnsafeGuaranteedRef { task -> Bool in
            let previous = task.state.bitwiseAnd(~TaskState.scheduled, ordering: .acquiringAndReleasing).oldValue
            if previous & TaskState.complete != 0 { return false }
            if previous & TaskState.cancelRequested != 0 {
                task.perform(.cancel(.aborted))
                return false
            }
            task.perform(.poll)
            return true
        }
        if !polled { queued.release() }
    }

    /// Marks the task complete (its output already stored), wakes whoever awaits
    /// it, and drops the registry's reference.
    @usableFromInline
    final func markComplete() {
        let previous = state.bitwiseOr(TaskState.complete, ordering: .acquiringAndReleasing).oldValue
        if previous & TaskState.joinWaker != 0 {
            withUnsafeMutablePointer(to: &joinWaker, wakeStoredWaker)
        }
        loop._withUnsafeGuaranteedRef { $0.taskDidComplete(self) }
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
        publishWaker(waker, in: &joinWaker, state: state,
                     published: TaskState.joinWaker, done: TaskState.complete)
    }
}

/// Wakes the waker in `slot`, if any, without copying it.
///
/// A copy of a waker retains and releases its target (two atomic operations);
/// the common target, a task, is woken here through a borrowed reference
/// instead. The caller keeps the waker alive and guarantees that nobody writes
/// `slot` during the call (the join and oneshot slots are read-only once their
/// completion bit is published). Other targets are woken through a copy.
@inlinable
func wakeStoredWaker(_ slot: UnsafeMutablePointer<Waker?>) {
    // A `Waker?` is its target's object pointer (null for nil) and the
    // target's witness table.
    assert(MemoryLayout<Waker?>.size == 2 * MemoryLayout<UnsafeRawPointer>.size)
    guard let object = UnsafeRawPointer(slot).load(as: UnsafeRawPointer?.self) else { return }
    if SwiftRuntime.isInstance(object, ofExactly: RawTask.self) {
        Unmanaged<RawTask>.fromOpaque(object)._withUnsafeGuaranteedRef { $0.wake() }
    } else {
        slot.pointee?.wake()
    }
}

/// Six words: room for the future and output of most small tasks.
@usableFromInline
typealias InlineTaskStorage = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

/// The typed part of a task, stored in or through `RawTask.inlineStorage`.
@usableFromInline
struct TaskSlots<F: Future> {
    /// The future; `nil` once it completed or was cancelled (dropping it is the
    /// cancellation: docs/ARCHITECTURE.md, invariant 5).
    @usableFromInline var future: F?
    /// Written once on the loop thread before `complete` is set.
    @usableFromInline var output: Result<F.Output, JoinError>?

    @inlinable
    init(future: consuming F) {
        self.future = future
    }

    /// Whether the slots fit in `RawTask.inlineStorage`.
    @inlinable
    static var fitsInline: Bool {
        MemoryLayout<TaskSlots<F>>.size <= MemoryLayout<InlineTaskStorage>.size
            && MemoryLayout<TaskSlots<F>>.alignment <= MemoryLayout<InlineTaskStorage>.alignment
    }

    /// The slots of `task`, which runs a future of type `F`.
    @inlinable
    static func `in`(_ task: RawTask) -> UnsafeMutablePointer<TaskSlots<F>> {
        let storage = task.inlineStorageAddress
        let address = fitsInline ? storage : storage.load(as: UnsafeMutableRawPointer.self)
        return address.assumingMemoryBound(to: TaskSlots<F>.self)
    }

    @inlinable
    static func perform(_ task: RawTask, _ operation: RawTask.Operation) {
        let slots = TaskSlots<F>.in(task)
        switch operation {
        case .poll:
            // The ready queue's reference becomes the waker's; it keeps the task
            // alive to the end of this case, past the registry's release.
            var context = Context(waker: Waker(Unmanaged.passUnretained(task).takeRetainedValue()))
            Budget.startPoll()
            if case .ready(let value) = slots.pointee.future!.poll(&context) {
                slots.pointee.future = nil
                slots.pointee.output = .success(value)
                task.markComplete()
            }
            Budget.endPoll()
            withExtendedLifetime(context) {}
        case .cancel(let reason):
            slots.pointee.future = nil
            slots.pointee.output = .failure(JoinError(reason))
            task.markComplete()
        case .takeOutput(let destination):
            destination.assumingMemoryBound(to: Optional<Result<F.Output, JoinError>>.self)
                .pointee = slots.pointee.output.take()
        case .destroy:
            slots.deinitialize(count: 1)
            if !fitsInline { slots.deallocate() }
        case .describe(let destination):
            destination.assumingMemoryBound(to: Optional<String>.self).pointee =
                taskDescription(slots.pointee.future, of: F.self)
        }
    }
}
