import CLibUV

/// Counters a runtime keeps about its own work, for tests and introspection.
public struct RuntimeStatistics: Sendable, Equatable {
    /// Tasks spawned so far (including the ones `block(on:)` runs).
    public var tasksSpawned = 0
    /// Tasks spawned and not yet completed or cancelled.
    public var tasksAlive = 0
    /// Task polls.
    public var polls = 0
    /// Wakes on the loop thread that queued a task.
    public var localWakes = 0
    /// Wakes through the loop's inbox: from other threads, and from the
    /// loop's own thread while the loop is not running (between two
    /// `block(on:)` calls, a timer fired by `advanceTime(by:)`).
    public var foreignWakes = 0
    /// Swift concurrency jobs run on the loop: task resumptions, and hops onto
    /// the loop's executors (a job per hop).
    public var jobs = 0
    /// Swift tasks suspended right now in an await of a Weft future on this
    /// loop (`value(of:)`, the async TCP operations, `Weft.sleep`, ...): such
    /// an await polls its future inline, with no Weft task behind it, so it
    /// shows here and not in ``tasksAlive``. The bridge reports them.
    public var awaitsWaiting = 0
    /// Swift tasks started on this loop (by `LoopThread.spawn`, `LoopGroup.spawn`
    /// or a `LoopGroup` server's connections) and still running. They are not
    /// Weft tasks (``tasksAlive``); the bridge counts them.
    public var swiftTasksAlive = 0
    /// Iterations of the libuv loop (`uv_run` calls).
    public var loopIterations = 0
    /// Time spent in blocking loop iterations (waiting in the OS poll, plus the
    /// callbacks of the events that ended the wait), in nanoseconds; the rest of
    /// the time inside `block(on:)` went to tasks and non-blocking iterations.
    public var nanosecondsBlocked: UInt64 = 0
    /// Time inside `block(on:)` (or a `LoopThread`'s loop) not spent blocked:
    /// running tasks, jobs and non-blocking loop iterations, in nanoseconds.
    /// Filled in by ``Runtime/report()``; zero in ``Runtime/statistics``.
    public var nanosecondsBusy: UInt64 = 0

    /// Times an accept on this loop found the process (`EMFILE`) or the system
    /// (`ENFILE`) out of file descriptors. Each time, the listener closes the
    /// connections waiting in its backlog (``connectionsShed``) and goes on.
    public var acceptsOutOfDescriptors = 0
    /// Connections accepted and closed at once because the process was out of
    /// descriptors: their clients saw a close instead of waiting.
    public var connectionsShed = 0
    /// When an accept last found no descriptor free: wall-clock time since the
    /// Unix epoch (UTC); nil if it never happened.
    public var lastOutOfDescriptors: Duration?

    /// Bytes the loop's connections hold now: input read from their sockets
    /// and not yet consumed, plus writes queued for the kernel (see
    /// ``RuntimeOptions/connectionBufferBudget``).
    public var connectionBytesHeld = 0
    /// The most ``connectionBytesHeld`` has been.
    public var connectionBytesHeldPeak = 0
    /// Times a connection's reading paused because the loop's connections
    /// held more than its budget together.
    public var readsPausedForBudget = 0

    /// All counters at zero.
    public init() {}
}

/// The wall-clock time (`CLOCK_REALTIME`) since the Unix epoch.
func wallClockNow() -> Duration {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
}
