import CWeftSupport

/// The loop's two executor objects, sharing one job queue (DESIGN.md, "Swift
/// concurrency bridge"): a ``LoopSerialExecutor`` for actors pinned to the loop,
/// and a ``LoopTaskExecutor`` for tasks that prefer the loop.
///
/// A job enqueued on the task executor runs *on the task executor*, not
/// isolated to the serial executor (as DESIGN.md suggests). Run isolated, the
/// nonisolated code of such a task counted as having left that isolation at
/// each executor check of an await, and the runtime re-enqueued it: an async
/// read that waited for data cost 7 jobs instead of 1 (a test counts them). The
/// price is paid by calls from such a task into an actor pinned to the loop:
/// one job to enter the actor and one to come back, on the same thread.
final class LoopExecutors: Sendable {
    let serial: LoopSerialExecutor
    let task: LoopTaskExecutor

    init(core: LoopCore) {
        let target = JobTarget(core: core)
        serial = LoopSerialExecutor(target: target)
        task = LoopTaskExecutor(target: target)
    }
}

/// Where jobs go: the loop's local queue when enqueued on the loop thread (no
/// lock, no system call), else the inbox plus `uv_async_send`.
@usableFromInline
final class JobTarget: Sendable {
    let remote: RemoteScheduler
    /// The loop's identity (unique per process, never reused, unlike an address).
    @usableFromInline let loopIdentity: UInt64

    init(core: LoopCore) {
        remote = core.remote
        loopIdentity = core.identity
    }

    /// Whether the calling thread is running this loop right now, or running
    /// its orphaned jobs after it shut down.
    @usableFromInline
    var isOnLoopThread: Bool {
        LoopCore.withCurrent { $0?.identity == loopIdentity } || OrphanedJobs.isRunning(forLoop: loopIdentity)
    }

    func enqueue(_ job: UnownedJob, onTaskExecutor: Bool) {
        let enqueuedHere = LoopCore.withCurrent { current -> Bool in
            guard let current, current.identity == loopIdentity else { return false }
            current.enqueueLocal(job, onTaskExecutor: onTaskExecutor)
            return true
        }
        if !enqueuedHere { remote.enqueue(job, onTaskExecutor: onTaskExecutor) }
    }
}

/// The loop as a `SerialExecutor`: actors whose `unownedExecutor` is this run on
/// the loop thread, interleaved with Weft tasks and libuv callbacks. A call into
/// such an actor from a task on the loop's ``LoopTaskExecutor`` costs one job to
/// enter and one to come back, both on the loop thread (see `LoopExecutors`).
///
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
        target.enqueue(UnownedJob(job), onTaskExecutor: false)
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
        target.enqueue(UnownedJob(job), onTaskExecutor: true)
    }

    /// This executor, unowned (for `withTaskExecutorPreference` and `Task(executorPreference:)`).
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}

extension Runtime {
    /// The executor that runs actors on this runtime's loop (while it runs).
    public var serialExecutor: LoopSerialExecutor { core.executors.serial }

    /// The executor for tasks that should run on this runtime's loop.
    public var taskExecutor: LoopTaskExecutor { core.executors.task }
}
