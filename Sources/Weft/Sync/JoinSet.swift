/// A set of tasks spawned on the current runtime, whose results are collected
/// as they finish (Tokio's `JoinSet`).
///
/// ```swift
/// let loop = try LoopThread()
/// let total = try await loop.run {
///     let set = JoinSet<Int>()
///     for n in 1...3 { set.spawn(sleepFuture(for: .milliseconds(n)).map { n }) }
///     var total = 0
///     while let result = try await set.next() { total += try result.get() }   // .success(1), .success(2), ...
///     return total
/// }
/// loop.shutdown()
/// ```
///
/// Belongs to the loop thread it is used on (spawn from inside a task, or from
/// `async` code running on a Weft loop). As a ``PollStream`` it yields each
/// task's result in completion order and ends (`nil`) when the set is empty.
///
/// **Cancellation:** deinitializing the set aborts every task still in it.
/// Dropping a pending ``nextFuture()`` future loses nothing: results stay in the set
/// until a poll returns them.
public final class JoinSet<Output>: PollStream {
    private var running = FutureSet<JoinHandle<Output>>()
    /// Handles by `running` slot, to abort them.
    private var handles: [Int: JoinHandle<Output>] = [:]

    /// An empty set.
    public init() {}

    deinit { abortAll() }

    /// Tasks not yet collected.
    public var count: Int { running.count }

    /// Whether no task is left to collect.
    public var isEmpty: Bool { running.isEmpty }

    /// Spawns `future` on the runtime running the calling thread and adds it.
    @discardableResult
    public func spawn<F: Future>(_ future: F) -> JoinHandle<Output> where F.Output == Output {
        let handle = Weft.spawn(future)
        let slot = running.insert(handle)
        handles[slot] = handle
        return handle
    }

    /// Aborts every task in the set; their results (`JoinError(.aborted)`, or
    /// the output of one that finished first) can still be collected.
    public func abortAll() {
        for handle in handles.values { handle.abort() }
    }

    public func pollNext(_ context: inout Context) -> Poll<Result<Output, JoinError>?> {
        switch running.pollNextIndexed(&context) {
        case .pending: return .pending
        case .ready(nil): return .ready(nil)
        case .ready(let finished?):
            handles[finished.index] = nil
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
