#if Metrics
import CoreMetrics
import MetricsTestKit
import Synchronization
import Testing
import Weft
import WeftMetrics

/// Each test hands its own `TestMetrics` factory to WeftMetrics, so none
/// touches the process-wide `MetricsSystem`.
@Suite("WeftMetrics: each loop's statistics through swift-metrics")
struct WeftMetricsTests {
    @Test("a recorder turns a runtime's counters into counter increments that add up to its totals, and its gauges into the current values")
    func recorderMatchesTheRuntime() throws {
        let metrics = TestMetrics()
        let recorder = WeftMetrics.LoopRecorder(loop: "main", factory: metrics)
        let runtime = try Runtime()
        for round in 1...3 {
            for _ in 0..<(round * 10) { runtime.spawn(yieldNow()) }
            try runtime.block(on: yieldNow())
            recorder.record(runtime.report())
        }
        let statistics = runtime.statistics
        let spawned = try metrics.expectCounter("weft_tasks_spawned_total", [("loop", "main")])
        #expect(spawned.totalValue == Int64(statistics.tasksSpawned))
        #expect(spawned.values.count == 3)
        let polls = try metrics.expectCounter("weft_polls_total", [("loop", "main")])
        #expect(polls.totalValue == Int64(statistics.polls))
        let local = try metrics.expectCounter("weft_wakes_total", [("loop", "main"), ("kind", "local")])
        #expect(local.totalValue == Int64(statistics.localWakes))
        let alive = try metrics.expectGauge("weft_tasks_alive", [("loop", "main")])
        #expect(alive.lastValue == Double(runtime.report().statistics.tasksAlive))
        let handles = try metrics.expectGauge("weft_open_handles", [("loop", "main")])
        #expect(handles.lastValue == Double(runtime.openHandleCount))
        let busy = try metrics.expectGauge("weft_busy_ratio", [("loop", "main")])
        #expect(busy.values.allSatisfy { (0...1).contains($0) }, "\(busy.values)")
        withExtendedLifetime(recorder) {}  // its gauges go with it
    }

    @Test("exporting a loop group records every loop, labelled by its index, until cancelled")
    func groupExport() async throws {
        let metrics = TestMetrics()
        let group = try LoopGroup(loops: 2, name: "metrics-test")
        defer { group.shutdown() }
        let export = WeftMetrics.export(group, every: .milliseconds(20), factory: metrics)
        var recorded: [Int] = []
        for _ in 0..<250 {  // up to 5 s
            try await Task.sleep(for: .milliseconds(20))
            recorded = (0..<2).map { (try? metrics.expectGauge("weft_open_handles", [("loop", "\($0)")]).values.count) ?? 0 }
            if recorded.allSatisfy({ $0 >= 2 }) { break }
        }
        let swiftTasks = try metrics.expectGauge("weft_swift_tasks_alive", [("loop", "1")])
        export.cancel()
        #expect(recorded.allSatisfy { $0 >= 2 }, "recordings per loop: \(recorded)")
        #expect((swiftTasks.lastValue ?? 0) >= 1, "the exporting task itself runs on the loop")
    }

    @Test("an export every .zero records once a millisecond and leaves each loop to its other work, and cancel ends it (it kept the loop for ever)")
    func zeroInterval() async throws {
        let metrics = TestMetrics()
        let group = try LoopGroup(loops: 1, name: "metrics-zero")
        let export = WeftMetrics.export(group, every: .zero, factory: metrics)
        try await Task.sleep(for: .milliseconds(50))
        let ran = Mutex(false)
        group.loops[0].spawn { ran.withLock { $0 = true } }
        for _ in 0..<200 where !ran.withLock({ $0 }) {  // up to 2 s
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(ran.withLock { $0 }, "the exporting loop ran nothing else for 2 s")
        let recordings = try metrics.expectGauge("weft_open_handles", [("loop", "0")]).values.count
        export.cancel()
        await group.shutdownGracefully()
        #expect(recordings >= 1)
    }

    // Before the fix that came with this test, the gauges stayed with their
    // last values: a backend reported the dead loop's tasks alive and busy
    // for ever.
    @Test("once an export is cancelled and its group shut down, the loops' gauges are gone from the backend; their counters stay")
    func gaugesGoWithTheExport() async throws {
        let metrics = TestMetrics()
        let group = try LoopGroup(loops: 1, name: "metrics-gone")
        let export = WeftMetrics.export(group, every: .milliseconds(10), factory: metrics)
        for _ in 0..<500 where (try? metrics.expectGauge("weft_tasks_alive", [("loop", "0")])) == nil {  // up to 5 s
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect((try? metrics.expectGauge("weft_tasks_alive", [("loop", "0")])) != nil, "never recorded")
        export.cancel()
        await group.shutdownGracefully()
        #expect((try? metrics.expectGauge("weft_tasks_alive", [("loop", "0")])) == nil, "the gauge outlived its export")
        #expect((try? metrics.expectGauge("weft_busy_ratio", [("loop", "0")])) == nil)
        #expect((try? metrics.expectCounter("weft_polls_total", [("loop", "0")])) != nil, "the counter went too")
    }

    @Test("the recording future of a Runtime records once per interval, not at its start")
    func recordingFuture() throws {
        let metrics = TestMetrics()
        let runtime = try Runtime()
        let recording = runtime.spawn(WeftMetrics.recording(loop: "poll", every: .milliseconds(20), factory: metrics))
        try runtime.block(on: sleepFuture(for: .milliseconds(110)))
        recording.abort()
        let polls = try metrics.expectCounter("weft_polls_total", [("loop", "poll")])
        #expect((3...6).contains(polls.values.count), "\(polls.values.count) recordings in 110 ms at 20 ms")
    }

    // Before the fix that came with this test, every tick was due at once
    // (a period of 1 ns): the task recorded until its poll budget was spent
    // and was queued again, and the loop never waited for I/O.
    @Test("a recording future every .zero records at most once a millisecond, as an export does; the runtime's other tasks go on")
    func recordingEveryZero() throws {
        let metrics = TestMetrics()
        let runtime = try Runtime()
        let recording = runtime.spawn(WeftMetrics.recording(loop: "zero", every: .zero, factory: metrics))
        let start = ContinuousClock.now
        try runtime.block(on: sleepFuture(for: .milliseconds(50)))
        let elapsed = ContinuousClock.now - start
        recording.abort()
        let recordings = try metrics.expectCounter("weft_polls_total", [("loop", "zero")]).values.count
        let milliseconds = Int(elapsed / .milliseconds(1))
        #expect(recordings >= 1)
        #expect(recordings <= milliseconds + 5, "\(recordings) recordings in \(milliseconds) ms")
    }
}
#endif
