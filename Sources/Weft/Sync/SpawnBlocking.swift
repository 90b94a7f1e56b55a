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
    var submitted: Submitted?

    /// The result slot. `@unchecked Sendable` is sound: it is written once on the
    /// pool thread before libuv hands the request back to the loop thread (libuv's
    /// work queue orders the two), and read only on the loop thread after that.
    final class OutputBox: @unchecked Sendable {
        var value: Output?
    }

    /// Held by the future; dropping it abandons the request.
    final class Submitted {
        let item: BlockingWorkItem
        let output: OutputBox

        init(item: BlockingWorkItem, output: OutputBox) {
            self.item = item
            self.output = output
        }

        deinit {
            if !item.isFinished { item.abandon() }
        }
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<Output, WeftError>> {
        if submitted == nil {
            guard let loop = LoopCore.current else { preconditionFailure("spawnBlocking polled outside a Weft runtime") }
            let output = OutputBox()
            let body = self.body
            let item = BlockingWorkItem { output.value = body() }
            let result = item.submit(on: loop)
            submitted = Submitted(item: item, output: output)
            if result < 0 { return .ready(.failure(WeftError(uvCode: result, operation: "spawnBlocking"))) }
        }
        let submitted = submitted!
        guard submitted.item.isFinished else {
            submitted.item.register(context.waker)
            return .pending
        }
        guard let value = submitted.output.value else {
            return .ready(.failure(WeftError(.libuv(code: UV_ECANCELED.rawValue), operation: "spawnBlocking")))
        }
        return .ready(.success(value))
    }
}

/// One `uv_work_t` in flight (non-generic, so its callbacks can be C functions).
///
/// `request.data` holds a retained reference from `submit` until the after-work
/// callback, which libuv always calls (with `UV_ECANCELED` if cancelled). The pool
/// thread only calls `run`; `waker`, `isFinished` and `isAbandoned` are touched on
/// the loop thread only — hence `@unchecked Sendable`.
final class BlockingWorkItem: @unchecked Sendable {
    let run: @Sendable () -> Void
    private let request: UnsafeMutablePointer<uv_work_t> = .allocate(capacity: 1)
    private var waker: Waker?
    private var isAbandoned = false
    private(set) var isFinished = false

    init(run: @escaping @Sendable () -> Void) {
        self.run = run
    }

    deinit {
        request.deallocate()
    }

    func submit(on loop: LoopCore) -> Int32 {
        request.pointee.data = Unmanaged.passRetained(self).toOpaque()
        let result = uv_queue_work(loop.loop, request, { request in
            Unmanaged<BlockingWorkItem>.fromOpaque(request!.pointee.data!).takeUnretainedValue().run()
        }, { request, _ in
            let item = Unmanaged<BlockingWorkItem>.fromOpaque(request!.pointee.data!).takeRetainedValue()
            item.isFinished = true
            if !item.isAbandoned { item.waker.take()?.wake() }
        })
        if result < 0 {
            isFinished = true
            Unmanaged.passUnretained(self).release()
        }
        return result
    }

    func register(_ newWaker: Waker) {
        if waker.map({ !$0.willWake(newWaker) }) ?? true { waker = newWaker }
    }

    /// The future was dropped: forget the waker and cancel if not started.
    func abandon() {
        isAbandoned = true
        waker = nil
        _ = request.withMemoryRebound(to: uv_req_t.self, capacity: 1) { uv_cancel($0) }
    }
}

/// A future of `body`'s result, computed on libuv's thread pool so the loop
/// keeps running timers and I/O meanwhile. Fails with `ECANCELED` if cancelled
/// before it started.
public func spawnBlocking<Output: Sendable>(_ body: @escaping @Sendable () -> Output) -> SpawnBlocking<Output> {
    SpawnBlocking(body: body)
}
