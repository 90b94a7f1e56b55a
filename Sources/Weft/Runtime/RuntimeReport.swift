import CLibUV

/// A snapshot of a runtime for introspection: its counters and its live tasks.
/// Its `description` is a readable multi-line dump (what the samples print on
/// SIGUSR1).
public struct RuntimeReport: Sendable, Equatable, CustomStringConvertible {
    /// The runtime's counters.
    public var statistics: RuntimeStatistics
    /// Every live task, in no particular order (the registry moves its last
    /// task into the place of one that ends).
    public var tasks: [TaskSnapshot]
    /// Handles open on the loop, the runtime's own included (see
    /// ``Runtime/openHandleCount``).
    public var openHandleCount: Int
    /// libuv requests in flight (see ``Runtime/activeRequestCount``).
    public var activeRequestCount: Int
    /// Timers armed and not yet fired or dropped.
    public var pendingTimerCount: Int

    public var description: String {
        let s = statistics
        var lines = [
            "tasks: \(s.tasksAlive) alive, \(s.tasksSpawned) spawned; awaits: \(s.awaitsWaiting) waiting; polls: \(s.polls); "
                + "wakes: \(s.localWakes) local, \(s.foreignWakes) foreign; jobs: \(s.jobs); loop iterations: \(s.loopIterations)",
            "time: \(s.nanosecondsBusy / 1_000_000) ms busy, \(s.nanosecondsBlocked / 1_000_000) ms blocked in the OS poll",
            "handles: \(openHandleCount) open; requests: \(activeRequestCount) in flight; timers: \(pendingTimerCount) armed",
            "swift tasks: \(s.swiftTasksAlive) alive (started on this loop by spawn)",
            "buffers: \(s.connectionBytesHeld >> 10) KiB held by connections, peak \(s.connectionBytesHeldPeak >> 10) KiB; "
                + "reads paused for the loop's budget: \(s.readsPausedForBudget)",
            "accept: out of descriptors \(s.acceptsOutOfDescriptors) times, \(s.connectionsShed) connections shed"
                + (s.lastOutOfDescriptors.map { ", last at \(utcTimestamp($0))" } ?? ""),
        ]
        for task in tasks.prefix(Self.listedTaskLimit) {
            let state = task.isRunning ? "running" : task.isScheduled ? "ready  " : "waiting"
            lines.append("  \(state) \(task.isAwaited ? "(awaited) " : "")\(task.name)")
        }
        if tasks.count > Self.listedTaskLimit {
            lines.append("  … and \(tasks.count - Self.listedTaskLimit) more")
        }
        return lines.joined(separator: "\n")
    }

    /// At most this many tasks are listed in ``description`` (a server with
    /// thousands of connections would otherwise print a line each); the rest
    /// are counted. ``tasks`` has them all.
    public static let listedTaskLimit = 50
}

/// One live task in a ``RuntimeReport``.
public struct TaskSnapshot: Sendable, Equatable {
    /// The name given at spawn (``Runtime/spawn(_:name:)``), else the type of
    /// the task's future, which says what it waits on (e.g. `Sleep`). For the
    /// running task, always its future's type (a name is kept in the future,
    /// which is not read while its poll changes it).
    public var name: String
    /// Queued to be polled (woken), as opposed to waiting for a wake.
    public var isScheduled: Bool
    /// Someone awaits its `JoinHandle`: a task not finished, or a Swift
    /// await. (A task still running that gave up awaiting it, a `select` it
    /// lost, still counts: the waker it left cannot tell.)
    public var isAwaited: Bool
    /// Being polled: the task that took the report (from inside its poll).
    public var isRunning: Bool
}

/// What a task runs, for ``TaskSnapshot/name``: its name, or its future's type.
@usableFromInline
func taskDescription<F>(_ future: F?, of type: F.Type) -> String {
    (future as? any NamedTask)?.taskName ?? String(describing: type)
}

/// A future that carries a task name for ``RuntimeReport``s.
protocol NamedTask {
    var taskName: String { get }
}

/// `base`, spawned under a name. See ``Runtime/spawn(_:name:)``.
///
/// **Cancellation:** dropping it drops `base`.
public struct Named<Base: Future>: Future, NamedTask {
    /// The task's name in reports.
    public let name: String
    @usableFromInline var base: Base

    @inlinable
    init(name: String, base: Base) {
        self.name = name
        self.base = base
    }

    var taskName: String { name }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Base.Output> {
        base.poll(&context)
    }
}

extension Runtime {
    /// Starts `future` as a new task named `name`; task dumps
    /// (``report()``) show the name instead of the future's type.
    @inlinable
    @discardableResult
    public func spawn<F: Future>(_ future: F, name: String) -> JoinHandle<F.Output> {
        spawn(Named(name: name, base: future))
    }

    /// The runtime's counters and live tasks. Call it on the runtime's thread:
    /// outside `block(on:)`, or from one of its tasks (which the report lists
    /// as running, ``TaskSnapshot/isRunning``). It traps on another thread,
    /// which can reach a `Runtime` only around Swift's checks (the type is
    /// not `Sendable`); another thread asks one of its tasks for it (through
    /// a channel, say).
    public func report() -> RuntimeReport {
        precondition(loop.isOnLoopThread, "Runtime.report() called from a thread that does not own the runtime")
        return loop.report()
    }

    /// The report of the runtime running the calling thread (from inside a task,
    /// including async code on a `LoopThread`); nil elsewhere.
    public static func currentReport() -> RuntimeReport? {
        EventLoop.current?.report()
    }
}

/// Starts `future` as a new task named `name` on the runtime running the
/// calling thread. See ``Runtime/spawn(_:name:)``.
@inlinable
@discardableResult
public func spawn<F: Future>(_ future: F, name: String) -> JoinHandle<F.Output> {
    spawn(Named(name: name, base: future))
}

/// `sinceEpoch` as `2026-12-04 20:11:05 UTC`.
func utcTimestamp(_ sinceEpoch: Duration) -> String {
    var seconds = time_t(sinceEpoch.components.seconds)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    var text = [CChar](repeating: 0, count: 32)
    let length = strftime(&text, text.count, "%Y-%m-%d %H:%M:%S UTC", &parts)
    return String(decoding: text[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
