import Synchronization

/// A set of tasks spawned on the current runtime, whose results are collected
/// as they finish (Tokio's `JoinSet`).
///
/// ```swift
/// try await LoopThread.shared.run { @Sendable () async throws in
///     let set = JoinSet<Int>()
///     for n in 1...3 { try set.spawn(sleepFuture(for: .milliseconds(n)).map { n }) }
///     while let result = try await set.next() { print(result) }   // success(1), success(2), ...
/// }
/// ```
///
/// Belongs to the loop thread it is used on: spawn from inside a task, or from
/// `async` code running on a Weft loop (``LoopThread/run(_:)``,
/// ``LoopThread/spawn(_:)``). Anywhere else ``spawn(_:)`` throws. As a
/// ``PollStream`` it yields each task's result in completion order (tasks
/// that finished while nobody polled the set too) and ends (`nil`) when the
/// set is empty. Several tasks of its loop may await ``next()`` at once: each
/// result goes to one of them, and every one still waiting is woken for the
/// next.
///
/// **Cancellation:** deinitializing the set aborts every task still in it.
/// Dropping a pending ``nextFuture()`` future loses nothing: results stay in the set
/// until a poll returns them.
public final class JoinSet<Output>: PollStream {
    private var running = FutureSet<JoinHandle<Output>>()
    /// Handles by `running` slot, to abort them.
    private(set) var handles: [Int: JoinHandle<Output>] = [:]
    /// Every task awaiting the next result, woken as one: the waker `running`
    /// is polled with. (Given each poller's own waker, the set kept only the
    /// last: a task that polled before it was never woken again.)
    private let waiting = JoinSetWaiters()

    /// An empty set.
    public init() {}

    deinit { abortAll() }

    /// Tasks not yet collected.
    public var count: Int { running.count }

    /// Whether no task is left to collect.
    public var isEmpty: Bool { running.isEmpty }

    /// Spawns `future` on the runtime running the calling thread and adds it;
    /// returns a handle that can abort it (its output is the set's to take:
    /// a `JoinHandle` polled beside the set took the set's wake or trapped
    /// taking the output twice). Throws `WeftError(.wrongThread)` where no
    /// Weft runtime runs the calling thread (ordinary `async` code off a
    /// loop, a plain thread).
    @inlinable
    @discardableResult
    public func spawn<F: Future>(_ future: F) throws(WeftError) -> AbortHandle where F.Output == Output {
        // Inlinable, so that the task is specialized for `F` where it is
        // spawned (unspecialized, each poll goes through witness tables); the
        // bookkeeping stays behind `add`.
        guard EventLoop.withCurrent({ $0 != nil }) else { throw Self.notOnRuntime() }
        let handle = Weft.spawn(future)
        add(handle)
        return handle.abortHandle
    }

    /// The error of a ``spawn(_:)`` where no Weft runtime runs the thread.
    @usableFromInline
    static func notOnRuntime() -> WeftError {
        WeftError(.wrongThread, operation: "JoinSet.spawn",
                  detail: "no Weft runtime runs this thread; spawn from a task, or from async code on a Weft loop (LoopThread.run or spawn)")
    }

    /// Adds a spawned task's handle to the set.
    @usableFromInline
    func add(_ handle: JoinHandle<Output>) {
        // Registered with the task now, so that the set learns of the tasks
        // in the order they finish (queued to be polled, a task that
        // finished before the set's next poll came out in spawn order).
        let slot = running.insert(handle) { handle.task.isComplete || handle.task.registerJoinWaker($0) }
        handles[slot] = handle
    }

    /// Aborts every task in the set; their results (`JoinError(.aborted)`, or
    /// the output of one that finished first) can still be collected.
    public func abortAll() {
        // By slot, an order the schedule decides: in a dictionary's, which
        // changes from process to process, a deterministic runtime's seed
        // gave another schedule.
        for handle in handles.sorted(by: { $0.key < $1.key }).map(\.value) { handle.abort() }
    }

    public func pollNext(_ context: inout Context) -> Poll<Result<Output, JoinError>?> {
        waiting.register(context.waker)
        var setContext = Context(waker: Waker(waiting))
        switch running.pollNextIndexed(&setContext) {
        case .pending: return .pending
        case .ready(nil): return .ready(nil)
        case .ready(let finished?):
            handles[finished.index] = nil
            handles.shrinkIfSparse()  // a burst of tasks gone
            return .ready(finished.output)
        }
    }

    /// A future of the next result to finish; `nil` when the set is empty.
    public func nextFuture() -> JoinSetNext<Output> {
        JoinSetNext(set: self)
    }
}

/// The future returned by ``JoinSet/nextFuture()``.
///
/// **Cancellation:** cancel-safe; see ``JoinSet``.
public struct JoinSetNext<Output>: Future {
    let set: JoinSet<Output>

    public mutating func poll(_ context: inout Context) -> Poll<Result<Output, JoinError>?> {
        set.pollNext(&context)
    }
}

/// The tasks awaiting one ``JoinSet``'s next result, woken together: one
/// waker for the set's children to wake, however many tasks poll the set.
final class JoinSetWaiters: Wakeable {
    private let waiting = Mutex(WaitingWakers())

    /// Keeps `waker` until the next wake (once: a task polling again is kept once).
    func register(_ waker: Waker) {
        let letGo = waiting.withLock { $0.register(waker) }
        letGo?.wake()  // after the lock
    }

    func wake() {
        var woken = waiting.withLock { $0.take() }
        woken.wakeAll()
    }
}
