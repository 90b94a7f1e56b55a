import CWeftSupport
import Synchronization

/// The `ContinuationWaker` of one Swift task that ``LoopThread/spawn(_:)`` or
/// an ``AsyncFuture`` started: every await of that task on the loop uses it,
/// and one cancellation handler for the task's whole life cancels it.
///
/// Why: any other task's awaits borrow the loop's spare waker and add a
/// runtime cancellation record around each suspension. Adding and removing
/// that record (the removal takes the task's status lock), plus borrowing and
/// returning the spare, cost one `swift_task_alloc` and one
/// `pthread_mutex_lock` per suspension: about 40 ns of the `resume`
/// benchmark's 390 ns (docs/BENCHMARKS-HISTORY.md).
///
/// A task finds its waker through a task-local value, bound to a constant key
/// (`weft_task_resumer_key`, not a `TaskLocal`: see
/// ``SwiftRuntime/taskLocalValue(_:as:)``) and read in place. Tasks created
/// inside it (child tasks, `Task { }`) inherit that value but are not its
/// owner, so ``forCurrentTask`` gives them `nil`, and their awaits use the spare.
///
/// What a waker kept for the task's life changes: a wake meant for an earlier
/// await can reach a later one (the future a task dropped while it waited on
/// it may still hold the waker), which is one spurious poll; and the handles'
/// waiting lists (`WaitingWakers`) drop the waker only once the task ends.
@usableFromInline
struct TaskResumer: Sendable {
    /// The key of the binding: computed, not stored, so reading it is a
    /// constant (a stored `static` is initialized lazily, behind `swift_once`).
    private static var key: UnsafeRawPointer { weft_task_resumer_key().unsafelyUnwrapped }

    /// The owning task's runtime address: compared, never dereferenced.
    private let owner: UInt
    /// The bridge state of the loop the task was started on. The waker
    /// serves only awaits on that loop (``LoopExecutors/loopAddress``), whose
    /// shutdown cancels the task: an await on another loop borrows that
    /// loop's spare waker and is listed there, so that its shutdown cancels
    /// the await (with this waker it was not listed, and waited for ever).
    /// It is also the way back to the loop for an await whose task resumed
    /// elsewhere (inside a default actor that another task held). Nil for a
    /// task started after its loop shut down, on the loop's orphaned-jobs
    /// queue.
    ///
    /// Three words, no more: the value lives on the task's stack, which an
    /// idle connection's task holds, and a fourth (the loop's address, kept
    /// here before) pushed that stack into a second 1 KiB slab.
    private let executors: LoopExecutors?
    private let resumer: ContinuationWaker

    /// What ``begin()`` set up, for ``Binding/end()`` to undo.
    struct Binding {
        fileprivate let resumer: ContinuationWaker
        fileprivate let record: UnsafeMutableRawPointer?

        /// Undoes ``TaskResumer/begin()``, in reverse order, as the task's
        /// body ends.
        func end() {
            SwiftRuntime.removeCancellationHandler(record)
            SwiftRuntime.popTaskLocal()
            resumer.finish()
        }
    }

    /// Gives the running task, just created on a loop, a waker of its own for
    /// its awaits. Call it first thing in the task's body, and `end()` on the
    /// value it returns in a `defer` right after.
    ///
    /// Not `TaskLocal.withValue { }` and `withTaskCancellationHandler { }`:
    /// their frames and their closures' (about 600 bytes) pushed an idle
    /// connection's task into one more 1 KiB stack slab. This makes the
    /// runtime calls those functions make, with no frame of its own: it binds
    /// the task-local value (the item lives on the task's stack until `end()`
    /// pops it) and adds the cancellation record (likewise removed by `end()`,
    /// before the pop: the task's stack allocations are freed in reverse).
    static func begin() -> Binding {
        let resumer = ContinuationWaker()
        let executors = EventLoop.withCurrent { $0?.executors }
        SwiftRuntime.pushTaskLocal(
            key, TaskResumer(owner: SwiftRuntime.currentTaskAddress, executors: executors, resumer: resumer))
        return Binding(resumer: resumer, record: SwiftRuntime.addCancellationHandler(resumer))
    }

    /// The waker of the running task, if the task owns one and was started on
    /// `loop` (the running loop's address). A task that inherited the value
    /// is not its owner; nor is one created after the owner ended at the
    /// owner's address, since the owner's waker is finished by then.
    @usableFromInline
    static func forCurrentTask(onLoop loop: UnsafeMutableRawPointer) -> ContinuationWaker? {
        guard let own = ownedByCurrentTask, own.pointee.executors?.loopAddress == UInt(bitPattern: loop),
              !own.pointee.resumer.isFinished
        else { return nil }
        return own.pointee.resumer
    }

    /// The bridge state of the loop the running task was started on, if the
    /// task owns a waker.
    static var executorsOfCurrentTask: LoopExecutors? {
        ownedByCurrentTask?.pointee.executors
    }

    /// The binding, if the running task is its owner (not a task that
    /// inherited it).
    @inline(__always)
    private static var ownedByCurrentTask: UnsafePointer<TaskResumer>? {
        guard let own = SwiftRuntime.taskLocalValue(key, as: TaskResumer.self),
              own.pointee.owner == SwiftRuntime.currentTaskAddress
        else { return nil }
        return own
    }
}
