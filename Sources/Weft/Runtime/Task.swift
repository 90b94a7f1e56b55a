import CWeftSupport
import Synchronization

/// A spawned task: its state word, its place in the runtime, and its future and
/// output slot, in one allocation sized to the future (Tokio's layout).
///
/// The allocation is the object's header, then the state word, the registry
/// index and ``Fields`` (56 bytes together), then the typed part, a
/// `TaskSlots<F>`: `ManagedBufferPointer` allocates as many words of tail as
/// they need, so a task whose future and output take 16 bytes fills a 96-byte
/// malloc chunk and one of 58 bytes a 144-byte chunk (before, a fixed 120-byte
/// object held up to 48 bytes inline, and a larger future took an allocation
/// of its own besides). The class has no stored properties, as
/// `ManagedBufferPointer` requires of a buffer class: everything lives in the
/// tail. The tail's pointers are safe to use for the task's whole life: `make`
/// sizes the tail for `F` (`TaskSlots.tailWords`) and initializes every part
/// before the task is returned to anyone; only `deinit`, when no reference is
/// left, deinitializes them; and a class instance never moves.
///
/// The class is not generic: the executor, wakers and handles use it without
/// knowing the future's type, and reach the typed payload through `vtable`, a
/// closure built where the type is known (Tokio's raw-task vtable). This keeps
/// every poll specialised (a protocol witness of `TaskSlots<F>` would not be: it
/// looks up generic metadata on every call), and keeps the deinit free of
/// generic-metadata lookups (a generic class's deinit looks up its field types'
/// metadata every time; measured at a third of the cost of a spawn).
///
/// One cost of keeping the closure in the tail: each call retains and releases
/// its context (empty for a specialised `make`, so both return at once), two
/// runtime calls per poll that the class's `let` property of the two-allocation
/// layout did not need (the compiler borrows a class's `let`, but copies a
/// value loaded through a pointer). Swift 6.3 has no way to borrow it there:
/// an `UnsafePointer`, a `borrowing` parameter and a bit-cast of the closure's
/// two words all compile to the same retain and release. It is the `wake`
/// benchmark's 3% since the one-allocation task (docs/BENCHMARKS-HISTORY.md,
/// "Fifteenth session").
///
/// Sendable because its mutable fields are confined: the registry index, the
/// payload and the vtable are touched only on the loop thread of the runtime that
/// owns the task; other threads only use `state` (atomic), `inbox` (a lock), and
/// the join slot under the `TaskState.joinRegistering` protocol, which hands
/// the slot to exactly one side at a time (`registerJoinWaker`). The output is taken from the payload only after
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
        /// Deinitializes the payload.
        case destroy
        /// Writes what the task runs (its name, or its future's type) into the
        /// `String?` at the pointer; for task dumps. While the task `isRunning`
        /// (the dump is taken inside its poll), only its future's type: the
        /// poll is changing the future in place, which must not be read then.
        case describe(UnsafeMutableRawPointer, isRunning: Bool)
    }

    /// What every task holds besides its state word, its registry index and
    /// its typed part.
    @usableFromInline
    struct Fields {
        /// Where the task runs. Valid while the task is not complete: a runtime
        /// completes (cancels) every task before it goes away. Unmanaged because
        /// reading an `unowned(unsafe)` reference still retains it for each use.
        @usableFromInline let loop: Unmanaged<EventLoop>
        /// The inbox for wakes from other threads; kept alive by the task so that
        /// a late foreign wake after shutdown finds a closed inbox, not freed memory.
        @usableFromInline let inbox: WakeInbox
        /// Performs an `Operation` on the typed payload.
        @usableFromInline let vtable: (RawTask, Operation) -> Void
        /// The waker of whoever awaits the `JoinHandle` (see `TaskState.joinRegistering`).
        @usableFromInline var joinWaker: Waker?

        @inlinable
        init(loop: __shared EventLoop, vtable: @escaping (RawTask, Operation) -> Void) {
            self.loop = Unmanaged.passUnretained(loop)
            inbox = loop.inbox
            self.vtable = vtable
        }
    }

    // The tail: the state word at 0, the registry index at 4, the fields at 8,
    // then the typed part (at `payloadOffset`, aligned). Each is reached through
    // a pointer of its own, never through a struct that holds another: an
    // access to such a struct would also cover the atomic word other threads
    // use (ThreadSanitizer reports it as a race).

    /// Where the tail of `task`, allocated by `make`, starts.
    @inlinable
    static func tail(of task: AnyObject) -> UnsafeMutableRawPointer {
        ManagedBufferPointer<Void, UInt64>(unsafeBufferObject: task).withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0) }
    }

    /// Where the registry index and the fields lie in the tail (the state word
    /// is at 0): the one statement of the layout, for the accessors and `make`.
    @inlinable
    static var registryIndexOffset: Int { 4 }
    @inlinable
    static var fieldsOffset: Int { 8 }

    /// Where the typed part may start in the tail, before its alignment.
    @inlinable
    static var payloadOffset: Int { fieldsOffset + MemoryLayout<Fields>.size }

    /// `TaskState` bits.
    @inlinable
    final var state: UnsafeMutablePointer<Atomic<UInt32>> {
        Self.tail(of: self).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    /// The task's slot in the runtime's registry of live tasks (next to the
    /// state word, in what would be padding). Loop thread only.
    @inlinable
    final var registryIndex: UInt32 {
        get { Self.tail(of: self).load(fromByteOffset: Self.registryIndexOffset, as: UInt32.self) }
        set { Self.tail(of: self).storeBytes(of: newValue, toByteOffset: Self.registryIndexOffset, as: UInt32.self) }
    }

    /// The task's ``Fields``. The addresses in the tail are stable: a class
    /// instance never moves.
    @inlinable
    final var fields: UnsafeMutablePointer<Fields> {
        (Self.tail(of: self) + Self.fieldsOffset).assumingMemoryBound(to: Fields.self)
    }

    @inlinable
    final var loop: Unmanaged<EventLoop> { fields.pointee.loop }

    @inlinable
    final var inbox: WakeInbox { fields.pointee.inbox }

    /// The join waker's own slot (see `TaskState.joinRegistering`).
    @inlinable
    final var joinWakerSlot: UnsafeMutablePointer<Waker?> { fields.pointer(to: \.joinWaker)! }

    deinit {
        perform(.destroy)
        fields.deinitialize(count: 1)
        state.deinitialize(count: 1)
    }

    /// Performs `operation` on the typed payload.
    @inlinable
    final func perform(_ operation: Operation) {
        fields.pointee.vtable(self, operation)
    }

    /// A task running `future` on `loop`, not yet registered.
    @inlinable
    static func make<F: Future>(_ future: consuming F, loop: EventLoop) -> RawTask {
        let buffer = ManagedBufferPointer<Void, UInt64>(bufferClass: RawTask.self, minimumCapacity: TaskSlots<F>.tailWords) { _, _ in }
        let task = unsafeDowncast(buffer.buffer, to: RawTask.self)
        let tail = tail(of: task)
        tail.bindMemory(to: Atomic<UInt32>.self, capacity: 1).initialize(to: Atomic(TaskState.scheduled))
        task.registryIndex = 0
        (tail + fieldsOffset).bindMemory(to: Fields.self, capacity: 1).initialize(to: Fields(loop: loop, vtable: { task, operation in
            TaskSlots<F>.perform(task, operation)
        }))
        TaskSlots<F>.address(in: tail).bindMemory(to: TaskSlots<F>.self, capacity: 1)
            .initialize(to: TaskSlots(future: future))
        return task
    }

    /// Schedules the task: a plain enqueue on its loop thread, the inbox elsewhere.
    @usableFromInline
    final func wake() {
        let previous = state.pointee.bitwiseOr(TaskState.scheduled, ordering: .acquiringAndReleasing).oldValue
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
        state.pointee.load(ordering: .acquiring) & TaskState.complete != 0
    }

    /// A completed task's waker no longer matters (see `WaitingWakers`).
    var isFinished: Bool { isComplete }

    /// Runs a task taken from the ready queue once, on its loop thread: polls
    /// it, or drops its future if an abort was requested. Consumes the queue's
    /// reference: a poll hands it to the waker in the poll's `Context` (so a
    /// poll costs no retain), and that waker is the last use of the task.
    static func run(_ queued: Unmanaged<RawTask>) {
        let polled = queued._withUnsafeGuaranteedRef { task -> Bool in
            let previous = task.state.pointee.bitwiseAnd(~TaskState.scheduled, ordering: .acquiringAndReleasing).oldValue
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
    ///
    /// A published join waker is dropped once woken: kept to the task's end,
    /// two tasks that each gave up awaiting the other's handle (a `select`
    /// with a timeout) held each other for ever.
    @usableFromInline
    final func markComplete() {
        let previous = state.pointee.bitwiseOr(TaskState.complete, ordering: .acquiringAndReleasing).oldValue
        if previous & TaskState.joinWaker != 0 {
            // Ours now: a poll takes the slot only while `complete` is clear.
            wakeStoredWaker(joinWakerSlot)
            joinWakerSlot.pointee = nil
        }
        loop._withUnsafeGuaranteedRef { $0.taskDidComplete(self) }
    }

    /// Requests cancellation: the task's future is dropped the next time it runs.
    @usableFromInline
    final func abort() {
        let previous = state.pointee.bitwiseOr(TaskState.cancelRequested, ordering: .acquiringAndReleasing).oldValue
        if previous & (TaskState.complete | TaskState.cancelRequested) == 0 {
            wake()
        }
    }

    /// The join half of the protocol: returns true when the output is ready to
    /// take; otherwise `waker` is registered to be woken on completion. Any
    /// copy of the handle may call it, from any thread.
    ///
    /// The poll takes `joinRegistering`, withdrawing the published waker in
    /// the same step, so it alone touches the slot until it publishes it
    /// again; a poll of another copy at that moment waits its turn (a few
    /// instructions). Each task awaiting a copy is kept (`JoinWaiters`), so a
    /// second one never takes the first one's place (no silent hang).
    @usableFromInline
    final func registerJoinWaker(_ waker: Waker) -> Bool {
        guard var current = takeJoinSlot(withdrawing: true) else { return true }
        let letGo = JoinWaiters.keep(waker, in: joinWakerSlot)
        defer { letGo?.wake() }  // after the slot is given up
        while true {
            let desired = (current | TaskState.joinWaker) & ~TaskState.joinRegistering
            let (exchanged, original) = state.pointee.compareExchange(
                expected: current, desired: desired, ordering: .acquiringAndReleasing)
            if exchanged { return false }
            if original & TaskState.complete != 0 {
                // Completed meanwhile and found nothing published, so it woke
                // nobody: the slot is ours to wake (the tasks awaiting other
                // copies) and to drop.
                let waiting = joinWakerSlot.move()
                joinWakerSlot.initialize(to: nil)
                state.pointee.bitwiseAnd(~TaskState.joinRegistering, ordering: .releasing)
                waiting?.wake()
                return true
            }
            current = original
        }
    }

    /// Takes `joinRegistering` (and, when `withdrawing`, takes back a
    /// published waker in the same step) unless the task is complete; returns
    /// the state it set, or nil once complete. The loads acquire: nil lets
    /// the caller take the output, which the completer stored before it
    /// released `complete` (relaxed, a weakly ordered CPU could read the
    /// output as it was before).
    @usableFromInline
    final func takeJoinSlot(withdrawing: Bool) -> UInt32? {
        var current = state.pointee.load(ordering: .acquiring)
        var spins = 0
        while true {
            if current & TaskState.complete != 0 { return nil }
            if current & TaskState.joinRegistering != 0 {
                // Another copy's poll, or the stuck check, holds it for a few
                // instructions; if its thread was preempted meanwhile, give it
                // the core rather than spin through a whole time slice.
                spins += 1
                if spins % 64 == 0 { sched_yield() }
                current = state.pointee.load(ordering: .acquiring)
                continue
            }
            var desired = current | TaskState.joinRegistering
            if withdrawing { desired &= ~TaskState.joinWaker }
            let (exchanged, original) = state.pointee.compareExchange(
                expected: current, desired: desired, ordering: .acquiringAndReleasing)
            if exchanged { return desired }
            current = original
        }
    }

    /// Reads the published join waker with the slot held, as a poll holds it
    /// (for the stuck check, on the loop thread, which is where the task
    /// completes: no completion runs meanwhile). Nil when none is published.
    final func readJoinWaker<T>(_ body: (Waker) -> T) -> T? {
        guard let taken = takeJoinSlot(withdrawing: false) else { return nil }
        defer { state.pointee.bitwiseAnd(~TaskState.joinRegistering, ordering: .releasing) }
        guard taken & TaskState.joinWaker != 0, let waker = joinWakerSlot.pointee else { return nil }
        return body(waker)
    }

    /// Marks the output taken; traps if a poll of a copy of the handle took it
    /// already (two threads taking it at once would both have moved it out).
    @inlinable
    final func claimOutput() {
        let previous = state.pointee.bitwiseOr(TaskState.outputTaken, ordering: .relaxed).oldValue
        precondition(previous & TaskState.outputTaken == 0, "JoinHandle polled again after it returned the task's output")
    }
}

/// Every task awaiting one task's handle, when more than one does (copies of
/// the handle polled in several tasks): what the join slot holds then, woken
/// as one waker.
///
/// `@unchecked Sendable` is sound because `waiting` is touched only by whoever
/// holds the join slot (`TaskState.joinRegistering`: one poll at a time), or
/// by the completer, which owns the slot once it found it published.
final class JoinWaiters: Wakeable, @unchecked Sendable {
    var waiting = WaitingWakers()

    /// Keeps `waker` in `slot` beside what it holds: in place of a finished
    /// task's waker, else with it in a `JoinWaiters`. Returns what it let go,
    /// to wake and release once the slot is given up. The caller holds the slot.
    static func keep(_ waker: Waker, in slot: UnsafeMutablePointer<Waker?>) -> WaitingWakers.LetGo? {
        guard let kept = slot.pointee, !kept.willWake(waker) else {
            slot.pointee = waker
            return nil
        }
        if let waiters = kept.target as? JoinWaiters { return waiters.waiting.register(waker) }
        if kept.isFinished {
            slot.pointee = waker
            return WaitingWakers.LetGo(evicted: nil, forgotten: [kept])
        }
        let waiters = JoinWaiters()
        _ = waiters.waiting.register(kept)
        _ = waiters.waiting.register(waker)
        slot.pointee = Waker(waiters)
        return nil
    }

    func wake() {
        var woken = waiting.take()
        woken.wakeAll()
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

/// The typed part of a task, stored in its tail after `RawTask.Fields`.
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

    /// Where the slots start in a task's tail: at `RawTask.payloadOffset`
    /// (56), rounded up to their alignment. The tail itself is 16-byte aligned
    /// (malloc's) and no Swift type aligns to more, so an offset that is a
    /// multiple of the alignment gives an aligned address. One offset, known
    /// at compile time, serves both `tailWords` and `address(in:)`.
    @inlinable
    static var offset: Int {
        let alignment = MemoryLayout<TaskSlots<F>>.alignment
        return (RawTask.payloadOffset + alignment - 1) & ~(alignment - 1)
    }

    /// Where the slots start in the task whose tail starts at `tail`.
    @inlinable
    static func address(in tail: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        tail + offset
    }

    /// The words of tail a task needs for its header words, fields and these slots.
    @inlinable
    static var tailWords: Int {
        (offset + MemoryLayout<TaskSlots<F>>.size + 7) / 8
    }

    /// The slots of `task`, which runs a future of type `F`.
    @inlinable
    static func `in`(_ task: RawTask) -> UnsafeMutablePointer<TaskSlots<F>> {
        address(in: RawTask.tail(of: task)).assumingMemoryBound(to: TaskSlots<F>.self)
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
            // A move, not `deinitialize`: the compiler destroys a generic
            // struct in memory through its metadata's value witness, which is
            // the unspecialized one (a metadata lookup, then a walk over each
            // nested type's tag: about 190 instructions per task in
            // `weft-echo --poll`'s churn); a moved-out value it destroys with
            // specialized code.
            _ = slots.move()
        case .describe(let destination, let isRunning):
            destination.assumingMemoryBound(to: Optional<String>.self).pointee =
                isRunning ? String(describing: F.self) : taskDescription(slots.pointee.future, of: F.self)
        }
    }
}
