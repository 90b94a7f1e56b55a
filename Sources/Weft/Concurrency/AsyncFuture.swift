import Synchronization

/// A future that runs an `async` closure as a Swift task on the loop polling it,
/// so poll-based combinators (`select`, `timeout`, `joinAll`) accept async work.
///
/// ```swift
/// let runtime = try Runtime()
/// let reply = try runtime.block(on: timeoutFuture(.seconds(1), AsyncFuture { () async -> String in
///     try? await sleep(for: .milliseconds(10))   // any async code, run as a Swift task on this runtime
///     return "done"
/// }))                                            // .success("done"), or .failure(TimedOut) after 1 s
/// ```
///
/// The task starts at the first poll (futures are lazy), with the loop's task
/// executor as its preference.
///
/// **Cancellation:** dropping the future cancels the task (Swift cooperative
/// cancellation: the closure sees `Task.isCancelled` / `CancellationError`).
public struct AsyncFuture<Output: Sendable>: Future {
    private let body: @Sendable () async -> Output
    private var started: Started?

    /// Shared between the future and its task.
    private final class Slot: Sendable {
        let state = Mutex<(output: Output?, waker: Waker?)>((nil, nil))
    }

    /// Owns the task; dropping the future drops this, which cancels the task.
    private final class Started {
        let slot = Slot()
        var task: Task<Void, Never>?
        deinit { task?.cancel() }
    }

    /// A future that will run `body` when first polled.
    public init(_ body: @escaping @Sendable () async -> Output) {
        self.body = body
    }

    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        if started == nil {
            guard let loop = EventLoop.current else { preconditionFailure("AsyncFuture polled outside a Weft runtime") }
            let started = Started()
            let slot = started.slot
            let body = self.body
            started.task = Task(executorPreference: loop.executors.task) {
                let own = TaskResumer.begin()
                defer { own.end() }
                let output = await body()
                let waker = slot.state.locked { state -> Waker? in
                    state.output = output
                    return state.waker.take()
                }
                waker?.wake()
            }
            self.started = started
        }
        let waker = context.waker
        return started!.slot.state.locked { state -> Poll<Output> in
            if let output = state.output { return .ready(output) }
            state.waker.register(waker)
            return .pending
        }
    }
}
