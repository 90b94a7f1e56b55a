import CLibUV
import Synchronization

/// How many Swift tasks the layers above started on a loop and are still
/// running: they count them (from any thread), the loop reports the figure.
final class SwiftTaskCount: Sendable {
    let alive = Atomic<Int>(0)
}

/// What a loop reports about itself.
extension EventLoop {
    /// The counters, with the wakes from other threads (counted by the inbox).
    var statistics: RuntimeStatistics {
        var statistics = counters
        statistics.foreignWakes = inbox.foreignWakes
        statistics.swiftTasksAlive = swiftTasks.alive.load(ordering: .relaxed)
        return statistics
    }

    /// A snapshot of the counters (busy time included) and of every live task;
    /// on the loop thread.
    func report() -> RuntimeReport {
        var statistics = self.statistics
        statistics.nanosecondsBusy = busyNanoseconds
        var tasks: [TaskSnapshot] = []
        registry.forEach { task in
            let isRunning = Unmanaged.passUnretained(task).toOpaque() == taskBeingPolled
            var name: String?
            withUnsafeMutablePointer(to: &name) { task.perform(.describe(UnsafeMutableRawPointer($0), isRunning: isRunning)) }
            let state = task.state.pointee.load(ordering: .acquiring)
            // Not the slot's bit alone: a waiter that gave up (a handle polled
            // once by hand, an await that timed out) leaves its waker there.
            let isAwaited = joinWaiters(of: task).contains { waiter in
                (waiter as? any FinishableWakeable).map { !$0.isFinished } ?? (waiter !== Waker.noop.target)
            }
            tasks.append(TaskSnapshot(name: name ?? "?", isScheduled: state & TaskState.scheduled != 0,
                                      isAwaited: isAwaited, isRunning: isRunning))
        }
        return RuntimeReport(statistics: statistics, tasks: tasks, openHandleCount: openHandleCount,
                             activeRequestCount: activeRequestCount, pendingTimerCount: timers.pendingCount)
    }

    /// Time inside `drive` not spent blocked in the OS poll, in nanoseconds.
    private var busyNanoseconds: UInt64 {
        var inside = nanosecondsInsideDrive
        if let start = driveStartedAt { inside += uv_hrtime() - start }
        return inside > counters.nanosecondsBlocked ? inside - counters.nanosecondsBlocked : 0
    }
}
