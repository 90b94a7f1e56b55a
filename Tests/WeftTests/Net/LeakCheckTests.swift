import Testing
import Weft

/// The leak check every integration test ends with must itself catch leaks.
@Suite("The leak check")
struct LeakCheckTests {
    @Test("on a LoopThread, the leak check reports a Swift task left waiting on a Weft future, though no Weft task backs it")
    func reportsAnAwaitLeftWaiting() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let notify = Notify()
        // Holds no handle, timer or request, and polls inline: only the count
        // of waiting awaits can see it.
        let waiter = loop.spawn { try await notify.notified() }
        await withKnownIssue("an await left waiting must fail the check") {
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline, within: .milliseconds(50))
        }
        notify.notifyOne()
        try await awaitWithin(.seconds(20), waiter)
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }

    @Test("on a Runtime, the leak check reports a Swift task left waiting on a Weft future, though no Weft task backs it")
    func reportsAnAwaitLeftWaitingOnARuntime() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let notify = Notify()
        let finished = Shared(false)
        // A Swift task preferring the loop: it runs while the runtime does.
        Task(executorPreference: runtime.taskExecutor) {
            try? await notify.notified()
            finished.value = true
        }
        try runtime.block(on: sleepFuture(for: .milliseconds(20)))
        withKnownIssue("an await left waiting must fail the check") {
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline, within: .milliseconds(50))
        }
        notify.notifyOne()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        #expect(finished.value)
    }
}
