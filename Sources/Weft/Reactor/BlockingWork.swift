import CLibUV

/// One `uv_work_t` in flight: `run` on a thread of libuv's pool, then the
/// completion on the loop. Owned as every request is (``RequestOperation``:
/// retained from submission to the after-work callback, which libuv always
/// calls, with `UV_ECANCELED` if cancelled before it started).
///
/// `@unchecked Sendable` because the pool thread only calls `run` (immutable);
/// everything else is touched on the loop thread only, and libuv's work queue
/// orders the pool thread's work before the completion.
final class BlockingWork: RequestOperation<uv_work_t>, @unchecked Sendable {
    let run: @Sendable () -> Void
    /// Called on the loop when the work is over (ran or was cancelled), before
    /// the waiting tasks are woken: what the submitter must release then.
    /// Dropped once called: the work may outlive its completion in an object
    /// the closure holds (a copy's chunk is its files' `transferInFlight`, and
    /// its `done` holds both files), and keeping it made that a cycle.
    private var done: (() -> Void)?

    private init(run: @escaping @Sendable () -> Void, done: (() -> Void)?) {
        self.run = run
        self.done = done
    }

    /// Queues `run` on the pool of `loop`; `done` runs on the loop afterwards.
    static func start(
        on loop: EventLoop, done: (() -> Void)? = nil, _ run: @escaping @Sendable () -> Void
    ) throws(WeftError) -> BlockingWork {
        let work = BlockingWork(run: run, done: done)
        let result = uv_queue_work(loop.uvLoop, work.request, { request in
            Unmanaged<BlockingWork>.fromOpaque(BlockingWork.address(of: request!))._withUnsafeGuaranteedRef { $0.run() }
        }, { request, status in
            let work = BlockingWork.finish(request!)
            work.done.take()?()
            work.complete(status: status)
        })
        if result < 0 {
            work.abandon()
            throw WeftError(uvCode: result, operation: "spawnBlocking")
        }
        return work
    }
}
