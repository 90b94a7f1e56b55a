import Dispatch

/// Runs the Swift jobs a loop can no longer run — those still queued when it
/// shut down and those enqueued on its executors afterwards — one at a time, in
/// order, on a serial dispatch queue.
///
/// A job must run somewhere or its task hangs; the global concurrent executor
/// would run two methods of an actor pinned to the dead loop at once, breaking
/// the actor's isolation (and with it Swift 6's data-race safety). While a job
/// runs here, the loop's executors report the current context as isolated.
final class OrphanedJobs: Sendable {
    private let queue = DispatchQueue(label: "weft.orphaned-jobs")
    private static let identityKey = DispatchSpecificKey<UInt64>()
    /// The loop's executors, which the jobs are run as. Unowned, like an actor's
    /// `unownedExecutor`: whoever enqueues on an executor keeps it alive.
    nonisolated(unsafe) private var serial: UnownedSerialExecutor?
    nonisolated(unsafe) private var task: UnownedTaskExecutor?

    init(loopIdentity: UInt64) {
        queue.setSpecific(key: Self.identityKey, value: loopIdentity)
    }

    /// Records the loop's executors. Called once, before any job can be
    /// enqueued on them (`LoopCore.init`).
    func adopt(serial: UnownedSerialExecutor, task: UnownedTaskExecutor) {
        self.serial = serial
        self.task = task
    }

    func enqueue(_ job: UnownedJob, onTaskExecutor: Bool) {
        let serial = self.serial!
        let task = self.task!
        queue.async {
            if onTaskExecutor {
                job.runSynchronously(on: task)  // as the loop runs them (see `LoopExecutors`)
            } else {
                job.runSynchronously(on: serial)
            }
        }
    }

    /// Whether the calling thread is running an orphaned job of the loop with
    /// `identity`.
    static func isRunning(forLoop identity: UInt64) -> Bool {
        DispatchQueue.getSpecific(key: identityKey) == identity
    }
}
