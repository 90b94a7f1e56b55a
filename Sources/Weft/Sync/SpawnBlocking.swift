import CLibUV

/// Runs blocking work on libuv's thread pool. See ``spawnBlocking(_:)``.
///
/// The pool has `UV_THREADPOOL_SIZE` threads (default 4, at most 1024), read once
/// when libuv first uses it; it is shared with file-system and `getaddrinfo`
/// requests, so long jobs can delay name resolution. The loop never blocks: the
/// closure runs on a pool thread and the result comes back through the loop.
///
/// **Cancellation:** dropping the future before the closure started cancels it
/// (`uv_cancel`); once started it runs to the end and its result is discarded.
/// Either way the waker is never called after the drop.
public struct SpawnBlocking<Output: Sendable>: Future {
    let body: @Sendable () -> Output
    /// The work in flight and its result slot, once polled; dropping the
    /// work's hold cancels it if it has not started.
    var submitted: (work: SubmittedRequest<uv_work_t, BlockingWork>, output: OutputBox)?

    /// The result slot. `@unchecked Sendable` is sound: it is written once on the
    /// pool thread before libuv hands the request back to the loop thread (libuv's
    /// work queue orders the two), and read only on the loop thread after that.
    final class OutputBox: @unchecked Sendable {
        var value: Output?
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<Output, WeftError>> {
        if submitted == nil {
            guard let loop = EventLoop.current else { return .ready(.failure(.outsideRuntime("spawnBlocking"))) }
            let output = OutputBox()
            let body = self.body
            do {
                submitted = (SubmittedRequest(try BlockingWork.start(on: loop) { output.value = body() }, on: loop), output)
            } catch {
                return .ready(.failure(error))
            }
        }
        let (work, output) = submitted!
        if let error = work.wrongThread("spawnBlocking") { return .ready(.failure(error)) }
        guard work.operation.status != nil else {
            work.operation.waiting.register(context.waker)?.wake()
            return .pending
        }
        guard let value = output.value else {
            return .ready(.failure(WeftError(.libuv(code: UV_ECANCELED.rawValue), operation: "spawnBlocking")))
        }
        return .ready(.success(value))
    }
}

/// A future of `body`'s result, computed on libuv's thread pool so the loop
/// keeps running timers and I/O meanwhile. Fails with `ECANCELED` if cancelled
/// before it started.
public func spawnBlocking<Output: Sendable>(_ body: @escaping @Sendable () -> Output) -> SpawnBlocking<Output> {
    SpawnBlocking(body: body)
}
