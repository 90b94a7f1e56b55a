/// The bridge's state on one loop, kept there as an attachment (see
/// `LoopAttachmentKey`): the loop's two executor objects, sharing one job
/// queue (docs/ARCHITECTURE.md, "The Swift concurrency bridge"), and the spare
/// waker of awaits on the loop. A ``LoopSerialExecutor`` serves actors pinned
/// to the loop, a ``LoopTaskExecutor`` tasks that prefer the loop.
///
/// A job enqueued on the task executor runs *on the task executor*, not
/// isolated to the serial executor. Run isolated, the nonisolated code of such
/// a task counted as having left that isolation at each executor check of an
/// await, and the runtime re-enqueued it: an async read that waited for data
/// cost 7 jobs instead of 1 (a test counts them). The price is paid by calls
/// from such a task into an actor pinned to the loop: one job to enter the
/// actor and one to come back, on the same thread.
///
/// `@unchecked Sendable` is sound because `spare` and `suspended`, its mutable
/// fields, are touched only on the loop thread (``ContinuationWaker/reusable()``,
/// ``ContinuationWaker/recycle(_:)`` and the awaits' bookkeeping in
/// `AwaitFuture.swift` run there, the shutdown too); the rest is immutable.
@usableFromInline
final class LoopExecutors: LoopJobOrphanage, LoopShutdownObserver, @unchecked Sendable {
    static let key = LoopAttachmentKey(.executors) { loop in LoopExecutors(loop: loop) }

    let serial: LoopSerialExecutor
    let task: LoopTaskExecutor
    /// The address of the loop (what `weft_current_runtime()` gives on its
    /// thread): compared, never dereferenced.
    let loopAddress: UInt
    /// A waker that a finished await on this loop left for the next one, so
    /// that async code awaiting futures does not allocate one per await (see
    /// ``ContinuationWaker/reusable()``). Loop thread only.
    @exclusivity(unchecked) var spare: ContinuationWaker?
    /// The awaits suspended on this loop without their task's own waker
    /// (tasks that prefer the loop but that ``LoopThread/spawn(_:)`` did not
    /// start, actors pinned to the loop), which the loop's shutdown does not
    /// cancel: it wakes them instead, cancelled, since the timers and I/O
    /// they wait for end with the loop. Each knows its index (a swap with
    /// the last removes one). Loop thread only.
    @exclusivity(unchecked) var suspended: [ContinuationWaker] = []

    private init(loop: EventLoop) {
        loopAddress = UInt(bitPattern: Unmanaged.passUnretained(loop).toOpaque())
        let target = JobTarget(loop: loop)
        serial = LoopSerialExecutor(target: target)
        task = LoopTaskExecutor(target: target)
        target.adopt(serial: serial, task: task)
    }

    /// The Swift jobs still queued when the loop shut down go to the
    /// orphaned-jobs queue (see ``LoopJobOrphanage``).
    func adopt(_ job: QueuedJob) {
        serial.target.orphans.enqueue(job)
    }

    func holdJobs() {
        serial.target.orphans.hold()
    }

    func releaseJobs() {
        serial.target.orphans.release()
    }

    /// Lists the waker of an await about to suspend in ``suspended``.
    func list(_ resumer: ContinuationWaker) {
        resumer.listIndex = Int32(suspended.count)
        suspended.append(resumer)
    }

    /// Takes it off the list again, if it is on it.
    func unlist(_ resumer: ContinuationWaker) {
        let index = Int(resumer.listIndex)
        guard index >= 0 else { return }
        resumer.listIndex = -1
        let last = suspended.removeLast()
        if index < suspended.count {
            suspended[index] = last
            last.listIndex = Int32(index)
        }
        suspended.shrinkIfSparse()  // a burst of awaits resumed; order, and so indices, kept
    }

    /// Cancels the ``suspended`` awaits: each resumes (on the orphaned-jobs
    /// queue) and throws.
    func loopShuttingDown() {
        let awaits = suspended
        suspended = []
        for resumer in awaits {
            resumer.listIndex = -1
            resumer.taskWasCancelled()
        }
    }
}

extension EventLoop {
    /// The bridge's executors for this loop (made on first use, from any thread).
    var executors: LoopExecutors {
        withAttachment(LoopExecutors.key) { $0 }
    }
}

/// Where the executors' jobs go: the loop's local queue when enqueued on the
/// loop thread (no lock, no system call), else the loop's inbox plus
/// `uv_async_send`; once the loop is gone, the orphaned-jobs queue. Each is
/// queued with the executor it runs as (a ``QueuedJob``), which the loop runs
/// it on.
///
/// It holds the loop's inbox, not the loop: executors outlive their loop when
/// actors or tasks keep them.
@usableFromInline
final class JobTarget: Sendable {
    let inbox: WakeInbox
    /// The loop's identity (unique per process, never reused, unlike an address).
    @usableFromInline let loopIdentity: UInt64
    /// Runs the jobs the loop can no longer run.
    let orphans: OrphanedJobs
    /// The loop's executors, which the jobs are run as. Unowned, like an actor's
    /// `unownedExecutor`: whoever enqueues on an executor keeps it alive. Set
    /// once by `adopt`, before any job can be enqueued.
    nonisolated(unsafe) private var serial: UnownedSerialExecutor?
    nonisolated(unsafe) private var task: UnownedTaskExecutor?

    init(loop: EventLoop) {
        inbox = loop.inbox
        loopIdentity = loop.identity
        orphans = OrphanedJobs(loopIdentity: loop.identity)
    }

    /// Records the executors the jobs run as.
    func adopt(serial: LoopSerialExecutor, task: LoopTaskExecutor) {
        self.serial = serial.asUnownedSerialExecutor()
        self.task = task.asUnownedTaskExecutor()
    }

    /// Whether the calling thread is running this loop right now, or running
    /// its orphaned jobs after it shut down.
    @usableFromInline
    var isOnLoopThread: Bool {
        EventLoop.withCurrent { $0?.identity == loopIdentity } || EventLoop.isRunningOrphanedJob(ofLoop: loopIdentity)
    }

    /// Queues `job` to run on the loop as `executor`.
    func enqueue(_ job: UnownedJob, runAs executor: Executor) {
        let queued: QueuedJob = switch executor {
        case .serial: .serial(job, serial!)
        case .task: .task(job, task!)
        // As the group, the executor the task prefers: run as the loop's own,
        // each await would find itself on the wrong executor and hop.
        case .group(let group): .task(job, group._withUnsafeGuaranteedRef { $0.asUnownedTaskExecutor() })
        }
        if !EventLoop.enqueue(queued, onLoop: loopIdentity, inbox: inbox) { orphans.enqueue(queued) }
    }

    /// The executor object a job was enqueued on, which it runs as. Unowned,
    /// as the executors are.
    enum Executor {
        /// The loop's ``LoopSerialExecutor``.
        case serial
        /// The loop's ``LoopTaskExecutor``: not isolated to the serial
        /// executor (see `LoopExecutors`).
        case task
        /// A ``LoopGroup``'s executor, which placed the job on this loop.
        case group(Unmanaged<LoopGroup>)
    }
}

/// The loop as a `SerialExecutor`: actors whose `unownedExecutor` is this run on
/// the loop thread, interleaved with Weft tasks and libuv callbacks. A call into
/// such an actor from a task on the loop's ``LoopTaskExecutor`` costs one job to
/// enter and one to come back, both on the loop thread (see `LoopExecutors`).
///
/// <!-- snippet: declarations; prelude: loop -->
/// ```swift
/// actor Connections {
///     nonisolated var unownedExecutor: UnownedSerialExecutor {
///         loop.serialExecutor.asUnownedSerialExecutor()
///     }
/// }
/// ```
public final class LoopSerialExecutor: SerialExecutor {
    let target: JobTarget

    init(target: JobTarget) {
        self.target = target
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        target.enqueue(UnownedJob(job), runAs: .serial)
    }

    /// This executor, for an actor's `unownedExecutor`.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Traps unless called on the loop thread while the loop runs (or, after
    /// shutdown, from one of the loop's orphaned jobs).
    public func checkIsolated() {
        precondition(target.isOnLoopThread, "not on this Weft loop's thread")
    }

    /// Whether the caller runs on the loop thread while the loop runs (or, after
    /// shutdown, in one of the loop's orphaned jobs).
    public func isIsolatingCurrentContext() -> Bool? {
        target.isOnLoopThread
    }
}

/// The loop as a `TaskExecutor`: tasks created with this preference (see
/// ``LoopThread/spawn(_:)``) run on the loop thread, so continuations resumed
/// from libuv callbacks resume there without a thread switch.
public final class LoopTaskExecutor: TaskExecutor {
    @usableFromInline let target: JobTarget

    init(target: JobTarget) {
        self.target = target
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        target.enqueue(UnownedJob(job), runAs: .task)
    }

    /// This executor, unowned (for `withTaskExecutorPreference` and `Task(executorPreference:)`).
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}

extension Runtime {
    /// The executor that runs actors on this runtime's loop (while it runs).
    public var serialExecutor: LoopSerialExecutor { loop.executors.serial }

    /// The executor for tasks that should run on this runtime's loop.
    public var taskExecutor: LoopTaskExecutor { loop.executors.task }
}
