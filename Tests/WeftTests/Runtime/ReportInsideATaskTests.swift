import Testing
@testable import Weft

@Suite("Introspection: a report taken inside a task")
struct ReportInsideATaskTests {
    /// Whether a `Reporting` future is in its poll, and whether its name was
    /// read meanwhile (a report describes a task through its future).
    final class Probe {
        var isPolling = false
        var nameReadWhilePolling = false
    }

    /// A future that takes its runtime's report in the middle of its poll.
    struct Reporting: Future, NamedTask {
        let probe: Probe

        var taskName: String {
            if probe.isPolling { probe.nameReadWhilePolling = true }
            return "reporting"
        }

        mutating func poll(_ context: inout Context) -> Poll<RuntimeReport> {
            probe.isPolling = true
            defer { probe.isPolling = false }
            return .ready(Runtime.currentReport()!)
        }
    }

    @Test("a report taken inside a task lists that task as running, by its future's type, without reading its future, which the poll is changing in place (the report copied it: a read overlapping the poll's exclusive access); the other tasks as before")
    func runningTaskIsNotRead() throws {
        let runtime = try Runtime()
        runtime.spawn(sleepFuture(for: .seconds(3600)), name: "the long nap")
        try runtime.block(on: yields(1))  // the nap waits
        let probe = Probe()
        let report = try runtime.block(on: runtime.spawn(Reporting(probe: probe))).get()
        #expect(!probe.nameReadWhilePolling, "the report read the future of the task taking it, mid-poll")
        #expect(report.tasks.count == 3, "\(report)")  // the nap, the reporter, and block(on:)'s own task awaiting it
        let running = report.tasks.filter(\.isRunning)
        #expect(running.map(\.name) == ["Reporting"], "\(report)")
        #expect(report.tasks.contains { $0.name == "the long nap" && !$0.isScheduled && !$0.isRunning }, "\(report)")
        #expect(report.description.contains("  running Reporting"), "\(report)")
        #expect(report.description.contains("  waiting the long nap"), "\(report)")
        #expect(runtime.report().tasks.allSatisfy { !$0.isRunning }, "a report taken between polls")
    }
}
