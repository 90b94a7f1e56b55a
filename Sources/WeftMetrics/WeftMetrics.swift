#if Metrics
import CoreMetrics
import Weft

/// Weft's per-loop statistics (``Weft/RuntimeStatistics``) as swift-metrics
/// metrics, each with a `loop` dimension:
///
/// | metric | kind | from |
/// | --- | --- | --- |
/// | `weft_tasks_alive`, `weft_swift_tasks_alive` | gauge | `tasksAlive`, `swiftTasksAlive` |
/// | `weft_tasks_spawned_total`, `weft_polls_total`, `weft_jobs_total` | counter | `tasksSpawned`, `polls`, `jobs` |
/// | `weft_wakes_total` (dimension `kind`: `local`, `foreign`) | counter | `localWakes`, `foreignWakes` |
/// | `weft_busy_ratio` | gauge | busy time over busy + blocked time since the last recording |
/// | `weft_open_handles`, `weft_requests_in_flight`, `weft_timers_armed` | gauge | the report |
/// | `weft_connection_bytes_held` | gauge | `connectionBytesHeld` |
/// | `weft_accepts_out_of_descriptors_total`, `weft_connections_shed_total` | counter | the accept counters |
///
/// <!-- snippet: prelude: metricsFactory -->
/// ```swift
/// import Metrics
/// import WeftMetrics
///
/// MetricsSystem.bootstrap(myFactory)
/// let group = try LoopGroup()
/// let export = WeftMetrics.export(group, every: .seconds(10))
/// // ...
/// export.cancel()
/// ```
///
/// Counters are recorded as the increase since the previous recording, so a
/// backend sees the same totals as the runtime. Each export (and each
/// ``WeftMetrics/LoopRecorder``) starts from the runtime's start: export a
/// group once (a second export of it after a `cancel()` adds the totals
/// again), and give the loops of two groups exported to one backend labels of
/// their own (``WeftMetrics/LoopRecorder`` with `recording(loop:)`), or their
/// series add up.
public enum WeftMetrics {
    /// Records every loop of `group` every `interval` (at least a
    /// millisecond), from a Swift task on each loop (it reads the loop's own
    /// report, on the loop's thread). Cancel the returned export to stop.
    public static func export(
        _ group: LoopGroup, every interval: Duration = .seconds(10), factory: any MetricsFactory = MetricsSystem.factory
    ) -> Export {
        // A zero sleep is ready at once: the task never gave its loop back.
        let interval = max(interval, .milliseconds(1))
        let tasks = group.loops.enumerated().map { index, loop in
            loop.spawn { () async throws -> Void in
                let recorder = LoopRecorder(loop: "\(index)", factory: factory)
                while true {
                    try await Weft.sleep(for: interval)
                    if let report = Runtime.currentReport() { recorder.record(report) }
                }
            }
        }
        return Export(tasks: tasks)
    }

    /// The loops' recording tasks; ``cancel()`` stops them.
    public struct Export: Sendable {
        let tasks: [Task<Void, Error>]

        /// Stops recording (each loop's task ends at its next wake).
        public func cancel() {
            for task in tasks { task.cancel() }
        }
    }

    /// A future that records the report of the runtime running it every
    /// `interval` (at least a millisecond), under `loop` (for a `Runtime` driven by `block(on:)`:
    /// `runtime.spawn(WeftMetrics.recording(loop: "main"))`). It never
    /// completes; abort its task to stop.
    public static func recording(
        loop label: String, every interval: Duration = .seconds(10), factory: any MetricsFactory = MetricsSystem.factory
    ) -> some Future<Void> {
        let recorder = LoopRecorder(loop: label, factory: factory)
        // A tick due at once after each (a period of 1 ns) kept the task
        // recording until its poll budget was spent, and queued again.
        var ticks = Weft.interval(every: max(interval, .milliseconds(1)))
        var skippedFirst = false
        return pollFn { (context: inout Context) -> Poll<Void> in
            while case .ready = ticks.pollNext(&context) {
                if skippedFirst, let report = Runtime.currentReport() { recorder.record(report) }
                skippedFirst = true  // an interval's first tick is at once
            }
            return .pending
        }
    }

    /// One loop's metrics, and the last totals its counters were recorded at.
    /// Its gauges go with it (an export's recorder when its task ends: the
    /// export cancelled, or the loop shut down; `recording(loop:)`'s when its
    /// future is dropped): kept, a backend went on reporting a dead loop's
    /// last values, its tasks alive and busy, for ever. Its counters stay:
    /// the totals they reached remain true.
    public final class LoopRecorder {
        private let tasksAlive, swiftTasksAlive, busyRatio, openHandles, requests, timers, bytesHeld: Gauge
        private let spawned, polls, jobs, localWakes, foreignWakes, outOfDescriptors, shed: Counter
        private var last = RuntimeStatistics()

        /// Metrics for the loop named `loop` (the `loop` dimension), made by `factory`.
        public init(loop: String, factory: any MetricsFactory = MetricsSystem.factory) {
            let dimensions = [("loop", loop)]
            func gauge(_ label: String) -> Gauge { Gauge(label: label, dimensions: dimensions, factory: factory) }
            func counter(_ label: String, _ extra: [(String, String)] = []) -> Counter {
                Counter(label: label, dimensions: dimensions + extra, factory: factory)
            }
            tasksAlive = gauge("weft_tasks_alive")
            swiftTasksAlive = gauge("weft_swift_tasks_alive")
            busyRatio = gauge("weft_busy_ratio")
            openHandles = gauge("weft_open_handles")
            requests = gauge("weft_requests_in_flight")
            timers = gauge("weft_timers_armed")
            bytesHeld = gauge("weft_connection_bytes_held")
            spawned = counter("weft_tasks_spawned_total")
            polls = counter("weft_polls_total")
            jobs = counter("weft_jobs_total")
            localWakes = counter("weft_wakes_total", [("kind", "local")])
            foreignWakes = counter("weft_wakes_total", [("kind", "foreign")])
            outOfDescriptors = counter("weft_accepts_out_of_descriptors_total")
            shed = counter("weft_connections_shed_total")
        }

        deinit {
            for gauge in [tasksAlive, swiftTasksAlive, busyRatio, openHandles, requests, timers, bytesHeld] {
                gauge.destroy()
            }
        }

        /// Records `report` (a report of this recorder's loop).
        public func record(_ report: RuntimeReport) {
            let now = report.statistics
            tasksAlive.record(now.tasksAlive)
            swiftTasksAlive.record(now.swiftTasksAlive)
            openHandles.record(report.openHandleCount)
            requests.record(report.activeRequestCount)
            timers.record(report.pendingTimerCount)
            bytesHeld.record(now.connectionBytesHeld)
            let busy = Double(now.nanosecondsBusy &- last.nanosecondsBusy)
            let blocked = Double(now.nanosecondsBlocked &- last.nanosecondsBlocked)
            if busy + blocked > 0 { busyRatio.record(busy / (busy + blocked)) }
            spawned.increment(by: max(0, now.tasksSpawned - last.tasksSpawned))
            polls.increment(by: max(0, now.polls - last.polls))
            jobs.increment(by: max(0, now.jobs - last.jobs))
            localWakes.increment(by: max(0, now.localWakes - last.localWakes))
            foreignWakes.increment(by: max(0, now.foreignWakes - last.foreignWakes))
            outOfDescriptors.increment(by: max(0, now.acceptsOutOfDescriptors - last.acceptsOutOfDescriptors))
            shed.increment(by: max(0, now.connectionsShed - last.connectionsShed))
            last = now
        }
    }
}
#endif
