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

    init(loopIdentity: UInt64) {
        queue.setSpecific(key: EventLoop.orphanedJobsKey, value: loopIdentity)
    }

    func enqueue(_ job: QueuedJob) {
        queue.async { job.run() }
    }

    /// Starts no job until ``release()`` (see ``LoopJobOrphanage/holdJobs()``).
    /// Called once, by the loop's shutdown.
    func hold() {
        queue.suspend()
    }

    /// Runs the jobs held since ``hold()``, in order.
    func release() {
        queue.resume()
    }
}
