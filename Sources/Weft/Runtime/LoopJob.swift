import Dispatch

/// Work that a layer above the executor hands to the loop from another thread:
/// a handle's close, a child's release. The executor queues it beside its
/// tasks and Swift's jobs and runs it between task polls (counted against the
/// same per-iteration budget), without knowing what it does. Such jobs are
/// rare; each is boxed in the queue (``QueuedJob/init(_:)``).
protocol LoopJob: Sendable {
    /// Runs the job on the loop thread.
    func run()
    /// The loop can no longer run the job: it shut down with the job queued,
    /// or the job arrived afterwards. Run it some other way, or release what it
    /// holds. Called on whichever thread found the loop closed.
    func loopClosed()
}

/// A job as the loop queues it: a Swift job of the bridge's executors (one per
/// resumed await, the loop's most frequent job), which the loop runs itself as
/// the executor it was enqueued on, or any other ``LoopJob``, boxed.
///
/// A plain value (nothing in it is reference-counted), so queueing a job,
/// running it and clearing a batch cost no retain and no value-witness call.
/// Queued as `any LoopJob`, each Swift job was copied into the queue through
/// its type's witness, and emptying a batch destroyed each through the
/// existential box's (about 1% of the samples of the async echo with one
/// message in flight, docs/BENCHMARKS-HISTORY.md, "Seventeenth session").
///
/// `@unchecked Sendable` because `UnownedJob` and the unowned executors are not
/// declared Sendable, though a job is made to move to the thread that runs it,
/// and whoever enqueues a job on an executor keeps that executor alive until
/// the job has run (as an actor's `unownedExecutor` is kept); a boxed job is
/// Sendable (``LoopJob``), and its box is touched by one thread at a time.
enum QueuedJob: @unchecked Sendable {
    /// A Swift job, run as the serial executor it was enqueued on.
    case serial(UnownedJob, UnownedSerialExecutor)
    /// A Swift job, run as the task executor it was enqueued on.
    case task(UnownedJob, UnownedTaskExecutor)
    /// Any other job; the entry holds the box's one reference.
    case other(Unmanaged<LoopJobBox>)

    /// `job`, boxed.
    init(_ job: any LoopJob) {
        self = .other(.passRetained(LoopJobBox(job)))
    }

    /// Runs the job: on the loop thread, or, for a Swift job the loop could no
    /// longer run, on the orphanage's queue. A boxed job's box goes with it.
    func run() {
        switch self {
        case .serial(let job, let executor): job.runSynchronously(on: executor)
        case .task(let job, let executor): job.runSynchronously(on: executor)
        case .other(let box): box.takeRetainedValue().job.run()
        }
    }

    /// The loop can no longer run the job: a Swift job goes to `orphanage` (it
    /// must run somewhere, or its task hangs), any other is told
    /// (``LoopJob/loopClosed()``) and its box released.
    func loopClosed(orphanage: (any LoopJobOrphanage)?) {
        switch self {
        case .serial, .task:
            guard let orphanage else { preconditionFailure("a Swift job queued on a loop without the bridge's executors") }
            orphanage.adopt(self)
        case .other(let box):
            box.takeRetainedValue().job.loopClosed()
        }
    }
}

/// A ``LoopJob`` in the loop's queue.
final class LoopJobBox: Sendable {
    let job: any LoopJob

    init(_ job: any LoopJob) {
        self.job = job
    }
}

/// The attachment that runs the Swift jobs its loop can no longer run (the
/// bridge's orphaned-jobs queue): the hook through which the executor hands
/// them over at shutdown without knowing the bridge. Any thread.
protocol LoopJobOrphanage: AnyObject {
    /// Runs `job` somewhere else, as the executor it was enqueued on.
    func adopt(_ job: QueuedJob)
    /// Runs no job until ``releaseJobs()``: while the loop shuts down, a job
    /// run elsewhere would drop what it awaited (a timer still in the wheel,
    /// a request whose callback may still run) on another thread than the
    /// shutdown's, which is still tearing those down.
    func holdJobs()
    /// Runs the jobs held since ``holdJobs()``, and those that come later.
    func releaseJobs()
}

extension EventLoop {
    /// Set, to the loop's ``identity``, on the queue that runs a shut-down
    /// loop's orphaned jobs (the orphanage's).
    static let orphanedJobsKey = DispatchSpecificKey<UInt64>()

    /// Whether the calling thread runs a job that a shut-down loop gave to its
    /// orphanage: async code of a task still bound to that loop.
    static var isRunningOrphanedJob: Bool {
        DispatchQueue.getSpecific(key: orphanedJobsKey) != nil
    }

    /// Whether the calling thread runs an orphaned job of the loop with
    /// `identity`.
    static func isRunningOrphanedJob(ofLoop identity: UInt64) -> Bool {
        DispatchQueue.getSpecific(key: orphanedJobsKey) == identity
    }
}

extension EventLoop {
    /// Runs `body`, which touches this loop's state (closes a handle, cancels
    /// a request or a timer), on the loop's thread: at once when called there,
    /// else handed to the loop's inbox as a job, run whenever the loop next
    /// runs; once it is shut down, at once, one at a time with the other late
    /// closes (``runLateClose(_:)``). What a value dropped on another thread
    /// (a future's output, an iterator, a handle's last copy) must do instead
    /// of touching the loop there.
    func onLoop(_ body: @escaping () -> Void) {
        if closesHere {
            body()
        } else {
            enqueue(RunOnLoop(loop: UnsafeTransfer(value: self), body: UnsafeTransfer(value: body)))
        }
    }
}

/// The job ``EventLoop/onLoop(_:)`` hands to a loop from another thread.
/// Both parts are made to move to the loop's thread: the body runs there
/// once (or, the loop shut down, under its late-close lock).
private struct RunOnLoop: LoopJob {
    let loop: UnsafeTransfer<EventLoop>
    let body: UnsafeTransfer<() -> Void>

    func run() {
        body.value()
    }

    /// After its shutdown nothing runs the loop again, so the body runs here;
    /// a handle's memory is freed when the loop itself is closed.
    func loopClosed() {
        loop.value.runLateClose(body.value)
    }
}
