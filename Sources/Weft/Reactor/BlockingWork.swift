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

    private init(run: @escaping @Sendable () -> Void) {
        self.run = run
    }

    /// Queues `run` on the pool of `loop`.
    static func start(on loop: EventLoop, _ run: @escaping @Sendable () -> Void) throws(WeftError) -> BlockingWork {
        let work = BlockingWork(run: run)
        let result = uv_queue_work(loop.uvLoop, work.request, { request in
            Unmanaged<BlockingWork>.fromOpaque(BlockingWork.address(of: request!))._withUnsafeGuaranteedRef { $0.run() }
        }, { request, status in
            BlockingWork.finish(request!).complete(status: status)
        })
        if result < 0 {
            work.abandon()
            throw WeftError(uvCode: result, operation: "spawnBlocking")
        }
        return work
    }
}
