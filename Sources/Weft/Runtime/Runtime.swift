import CLibUV
import CWeftSupport

/// A single-threaded async runtime: one libuv loop, its ready queue of tasks, and
/// the timers and handles that wake them.
///
/// A runtime belongs to the thread that created it (docs/ARCHITECTURE.md, invariant 9): spawn tasks and
/// call ``block(on:)`` there. Tasks run only while some thread is inside
/// ``block(on:)``, which runs the loop on the calling thread until its future is
/// ready:
///
/// ```swift
/// let runtime = try Runtime()
/// let greeting = try runtime.block(on: sleepFuture(for: .milliseconds(10)).map { "hello" })
/// ```
///
/// Dropping the runtime, or calling ``shutdown()``, cancels every task (their
/// `JoinHandle`s complete with `JoinError(.runtimeShutDown)`) and closes every
/// handle the runtime owns.
public final class Runtime {
    @usableFromInline let loop: EventLoop

    /// Creates a runtime with its own libuv loop; `options` can ask for the
    /// deterministic test mode, e.g. `Runtime(options: .deterministic(seed: 42))`
    /// (see ``RuntimeOptions/deterministic(seed:)``).
    public init(options: RuntimeOptions = RuntimeOptions()) throws(WeftError) {
        self.options = options
        loop = try EventLoop(options: options)
    }

    /// The options the runtime was created with.
    public let options: RuntimeOptions

    /// Deterministic mode: time elapsed on the virtual clock since the runtime
    /// was created; nil for a real-time runtime.
    public var virtualTimeElapsed: Duration? { loop.timers.virtualClock?.elapsed }

    /// Deterministic mode: moves the virtual clock forward by `duration`, firing
    /// every timer due on the way in deadline order (their tasks run at the next
    /// ``block(on:)``). Call it from the runtime's thread, outside `block(on:)`.
    /// The clock stops about 292 years after the runtime's start, where sleeps
    /// of an enormous duration, which never end, are due.
    /// Throws ``WeftError/Kind-swift.enum/invalidArgument`` on a real-time
    /// runtime, ``WeftError/Kind-swift.enum/wrongThread`` on another thread
    /// (the timers are the loop thread's), ``WeftError/Kind-swift.enum/reentrantBlock``
    /// while running.
    public func advanceTime(by duration: Duration) throws(WeftError) {
        guard loop.timers.virtualClock != nil else {
            throw WeftError(.invalidArgument, operation: "advanceTime(by:)",
                            detail: "only a runtime created with .deterministic(seed:) has a virtual clock")
        }
        guard loop.isOnLoopThread else {
            throw WeftError(.wrongThread, operation: "advanceTime(by:)",
                            detail: "a runtime's time is moved on the thread that created it")
        }
        guard !loop.isRunning else {
            throw WeftError(.reentrantBlock, operation: "advanceTime(by:)",
                            detail: "call it outside block(on:)")
        }
        loop.advanceVirtualTime(by: duration)
    }

    /// Runs `body` once per seed, each time with a fresh deterministic runtime
    /// (``RuntimeOptions/deterministic(seed:)``). When `body` throws, the seed is
    /// printed so that the run can be replayed, and the error is rethrown.
    public static func forEachSeed<Seeds: Sequence>(
        _ seeds: Seeds, _ body: (Runtime, UInt64) throws -> Void
    ) throws where Seeds.Element == UInt64 {
        for seed in seeds {
            do {
                try body(Runtime(options: .deterministic(seed: seed)), seed)
            } catch {
                print("Weft: failed with seed \(seed); replay it with Runtime(options: .deterministic(seed: \(seed))): \(error)")
                throw error
            }
        }
    }

    deinit {
        loop.shutdown()
    }

    /// Starts `future` as a new task and returns a handle to its output.
    ///
    /// The task runs when the runtime does (inside ``block(on:)``). After
    /// ``shutdown()`` the task is cancelled at once.
    @inlinable
    @discardableResult
    public func spawn<F: Future>(_ future: F) -> JoinHandle<F.Output> {
        let task = RawTask.make(future, loop: loop)
        loop.register(task)
        return JoinHandle(task)
    }

    /// Runs the loop on the calling thread until `future` completes, and returns
    /// its output. Other spawned tasks run meanwhile.
    ///
    /// Throws ``WeftError/Kind-swift.enum/stuck`` when the future can no longer
    /// make progress — no task ready, no active timer, handle or request, and no
    /// waker held outside the runtime (docs/ARCHITECTURE.md, invariant 7) — instead of hanging;
    /// ``WeftError/Kind-swift.enum/reentrantBlock`` when called from inside the
    /// runtime; ``WeftError/Kind-swift.enum/wrongThread`` from a thread other
    /// than the one that created the runtime; ``WeftError/Kind-swift.enum/shutDown``
    /// after ``shutdown()``.
    /// The stuck check errs on the side of waiting: a waker kept by user state
    /// counts as a possible wake-up, and so does a ``JoinHandle`` kept outside
    /// `future` (its ``JoinHandle/abort()`` can end the task); while such is the
    /// only one the loop re-checks every 100 ms. One case errs the other way:
    /// a task still running that gave up awaiting another's handle (a timeout
    /// or a `select` it lost) still counts as holding that handle, so one
    /// waker of the awaited task kept outside (by another thread) goes
    /// unseen; if nothing else is pending, `.stuck` comes before that wake. `future` itself is moved into
    /// the runtime, so `block(on: runtime.spawn(…))` of a task nothing can wake
    /// is reported.
    @inlinable
    public func block<F: Future>(on future: consuming F) throws(WeftError) -> F.Output {
        // Checked before the future becomes a task, so a rejected one never runs.
        guard !loop.isRunning else { throw WeftError(.reentrantBlock, operation: "block(on:)") }
        guard loop.isOnLoopThread else {
            throw WeftError(.wrongThread, operation: "block(on:)",
                            detail: "a runtime runs on the thread that created it")
        }
        // Moved into the task: a copy left here would count as a reference
        // held outside the runtime and defeat the stuck check.
        var handle = JoinHandle<F.Output>(RawTask.make(consume future, loop: loop))
        loop.register(handle.task)
        try loop.drive(until: Unmanaged.passUnretained(handle.task))
        var context = Context(waker: .noop)
        switch handle.poll(&context) {
        case .ready(.success(let value)):
            return value
        case .ready(.failure), .pending:
            throw WeftError(.shutDown, operation: "block(on:)")
        }
    }

    /// Cancels every task and closes every handle the runtime owns. Idempotent;
    /// the runtime cannot run again afterwards. Must not be called from inside
    /// one of its tasks.
    public func shutdown() throws(WeftError) {
        guard !loop.isRunning else {
            throw WeftError(.reentrantBlock, operation: "shutdown()",
                            detail: "a runtime cannot be shut down from inside its own block(on:)")
        }
        guard loop.isOnLoopThread else {
            throw WeftError(.wrongThread, operation: "shutdown()",
                            detail: "a runtime is shut down on the thread that created it (or dropped)")
        }
        loop.shutdown()
    }

    /// What the runtime has done so far.
    public var statistics: RuntimeStatistics { loop.statistics }

    /// Handles open on the loop, the runtime's own included (a wake-up handle and
    /// timers while it runs; none after shutdown). For leak checks in tests.
    public var openHandleCount: Int { loop.openHandleCount }

    /// Timers armed and not yet fired or dropped.
    public var pendingTimerCount: Int { loop.timers.pendingCount }

    /// libuv requests in flight on the loop (writes, connects, shutdowns, name
    /// lookups, thread-pool work). For leak checks in tests: zero once every
    /// operation has completed or been cancelled.
    public var activeRequestCount: Int { loop.activeRequestCount }
}

/// Starts `future` as a new task on the runtime running the calling thread.
///
/// Call it from inside a task (a future being polled by a runtime), or from
/// async code running on a loop (a task ``LoopThread/spawn(_:)`` started, an
/// actor pinned to a loop). Once that loop has shut down, such async code runs
/// on the loop's orphaned-jobs queue, and the task is cancelled as it starts:
/// its handle fails with ``JoinError/Reason/runtimeShutDown``, as
/// ``Runtime/spawn(_:)`` does after ``Runtime/shutdown()``. Anywhere else
/// (a thread no runtime runs, a Swift task bound to no loop) it traps:
/// there is no runtime to run the task.
@inlinable
@discardableResult
public func spawn<F: Future>(_ future: F) -> JoinHandle<F.Output> {
    // The runtime running this thread outlives the call: borrow it, no retain.
    return EventLoop.withCurrent { loop in
        guard let loop else { return spawnWithoutARunningLoop(future) }
        let task = RawTask.make(future, loop: loop)
        loop.register(task)
        return JoinHandle(task)
    }
}

/// ``spawn(_:)`` on a thread no loop runs: a task cancelled at once when the
/// caller is a shut-down loop's orphaned job, else a trap.
@usableFromInline @inline(never)
func spawnWithoutARunningLoop<F: Future>(_ future: F) -> JoinHandle<F.Output> {
    guard EventLoop.isRunningOrphanedJob else {
        preconditionFailure("spawn(_:) called outside a Weft runtime; use Runtime.spawn(_:), LoopThread.spawn(_:), or JoinSet.spawn(_:) from async code")
    }
    let loop = EventLoop.afterShutdown
    let task = RawTask.make(future, loop: loop)
    loop.registerAfterShutdown(task)
    return JoinHandle(task)
}
