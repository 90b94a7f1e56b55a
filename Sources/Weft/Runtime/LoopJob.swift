/// Work that a layer above the executor hands to the loop: a Swift
/// concurrency job of the bridge's executors, or a handle's close requested
/// from another thread. The executor queues it beside its tasks and runs it
/// between task polls (counted against the same per-iteration budget),
/// without knowing what it does.
///
/// Conforming types should be small (up to three words): the queue stores
/// them inline, with no allocation per job.
protocol LoopJob: Sendable {
    /// Runs the job on the loop thread.
    func run()
    /// The loop can no longer run the job: it shut down with the job queued,
    /// or the job arrived afterwards. Run it some other way, or release what it
    /// holds. Called on whichever thread found the loop closed.
    func loopClosed()
}
