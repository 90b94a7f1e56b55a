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
    /// Iterations of the libuv loop (`uv_run` calls).
    public var loopIterations = 0

    public init() {}
}
