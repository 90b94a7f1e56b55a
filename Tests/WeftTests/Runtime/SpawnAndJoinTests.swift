import Foundation
import Testing
import Weft

@Suite("Spawning, joining and aborting tasks")
struct SpawnAndJoinTests {
    @Test("block(on:) returns the future's output and counts the task it ran")
    func blockOnReturnsOutput() throws {
        let runtime = try Runtime()
        let value = try runtime.block(on: ready(20).map { $0 + 1 }.then { ready($0 * 2) })
        #expect(value == 42)
        #expect(runtime.statistics.tasksSpawned == 1)
        #expect(runtime.statistics.tasksAlive == 0)
    }

    @Test("a JoinHandle yields the task's output and reports it finished")
    func joinHandleYieldsOutput() throws {
        let runtime = try Runtime()
        let handle = runtime.spawn(yields(3).map { "done" })
        #expect(!handle.isFinished)
        let output = try runtime.block(on: handle)
        #expect(try output.get() == "done")
        #expect(handle.isFinished)
        #expect(runtime.statistics.tasksSpawned == 2)
        #expect(runtime.statistics.tasksAlive == 0)
    }

    @Test("tasks spawned from inside a task run on the same runtime")
    func spawnFromInsideATask() throws {
        let runtime = try Runtime()
        let outputs = try runtime.block(on: ready(()).then { _ in
            joinAll((1...5).map { index in spawn(yields(index).map { index * index }) })
        })
        #expect(outputs.map { try? $0.get() } == [1, 4, 9, 16, 25])
        #expect(runtime.statistics.tasksSpawned == 6)
        #expect(runtime.statistics.tasksAlive == 0)
    }

    @Test("spawned tasks first run in spawn order, also while the ready queue grows around its wrap point")
    func spawnOrderSurvivesQueueGrowth() throws {
        let runtime = try Runtime()
        let order = Box<[Int]>([])
        var spawned = 0
        func spawnRecorders(_ count: Int) {
            for _ in 0..<count {
                let id = spawned
                spawned += 1
                spawn(pollFn { (_: inout Context) -> Poll<Void> in
                    order.value.append(id)
                    return .ready(())
                })
            }
        }
        // The first batch is partly run before the second is queued behind it, so
        // the second fills the queue past its end and makes it grow while wrapped.
        var batches = [700, 5000]
        try runtime.block(on: pollFn { (context: inout Context) -> Poll<Void> in
            guard !batches.isEmpty else { return order.value.count == spawned ? .ready(()) : yieldAgain(&context) }
            spawnRecorders(batches.removeFirst())
            return yieldAgain(&context)
        })
        #expect(order.value == Array(0..<5700))
    }

    @Test("a detached task keeps running after its JoinHandle is dropped")
    func droppedHandleDetaches() throws {
        let runtime = try Runtime()
        let ran = Box(false)
        _ = runtime.spawn(yields(2).map { ran.value = true })
        try runtime.block(on: yields(5))
        #expect(ran.value)
        #expect(runtime.statistics.tasksAlive == 0)
    }

    @Test("abort() of a task blocked on a timer completes its handle with .aborted quickly and disarms the timer")
    func abortSleepingTask() throws {
        let runtime = try Runtime()
        let flag = DropFlag()
        let handle = runtime.spawn(sleepFuture(for: .seconds(60)).map { 1 }.probed(flag))
        try runtime.block(on: yieldNow())  // the task arms its timer
        #expect(runtime.pendingTimerCount == 1)
        #expect(!flag.isDropped)

        handle.abort()
        let (output, elapsed) = try measure { try runtime.block(on: handle) }
        #expect(output.failure == JoinError(.aborted))
        // Not aborted, the task would wait out its 60 s sleep: 5 s is loose
        // enough for a loaded machine or a sanitizer and still catches that.
        #expect(elapsed < .seconds(5))
        #expect(handle.isFinished)
        #expect(flag.isDropped)
        #expect(runtime.pendingTimerCount == 0)
        #expect(runtime.statistics.tasksAlive == 0)
    }

    @Test("abort() from inside another task cancels the target at its next turn")
    func abortFromAnotherTask() throws {
        let runtime = try Runtime()
        let victim = runtime.spawn(sleepFuture(for: .seconds(60)).map { 1 })
        let output = try runtime.block(on: yieldNow().then { _ -> JoinHandle<Int> in
            victim.abort()
            return victim
        })
        #expect(output.failure == JoinError(.aborted))
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("abort() from another thread wakes the loop and cancels the sleeping task")
    func abortFromAnotherThread() throws {
        let runtime = try Runtime()
        let victim = runtime.spawn(sleepFuture(for: .seconds(60)).map { 1 })
        let aborter = ForeignThread {
            Thread.sleep(forTimeInterval: 0.02)
            victim.abort()
        }
        let (output, elapsed) = try measure { try runtime.block(on: victim) }
        aborter.join()
        #expect(output.failure == JoinError(.aborted))
        #expect(elapsed < .seconds(5))
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("abort() after the task finished changes nothing")
    func abortAfterCompletion() throws {
        let runtime = try Runtime()
        var handle = runtime.spawn(ready(3))
        try runtime.block(on: yieldNow())
        #expect(handle.isFinished)
        handle.abort()
        guard case .ready(let output) = pollOnce(&handle) else {
            Issue.record("a finished task's handle was pending")
            return
        }
        #expect(try output.get() == 3)
    }

    @Test("a task aborted before it ever ran is never polled")
    func abortBeforeFirstPoll() throws {
        let runtime = try Runtime()
        let polls = Counter()
        let handle = runtime.spawn(pollFn { (_: inout Context) -> Poll<Int> in
            polls.value += 1
            return .ready(1)
        })
        handle.abort()
        let output = try runtime.block(on: handle)
        #expect(output.failure == JoinError(.aborted))
        #expect(polls.value == 0)
    }

    @Test("a JoinHandle can be awaited by another task, which is woken when the target finishes")
    func joinHandleWakesItsAwaiter() throws {
        let runtime = try Runtime()
        let mailbox = Mailbox<Int>()
        let target = runtime.spawn(mailbox.receive())
        let awaiterPolls = Counter()
        let awaiter = runtime.spawn(target.counted(awaiterPolls))
        runtime.spawn(yields(3).map { mailbox.send(9) })
        let output = try runtime.block(on: awaiter)
        #expect(try output.get().get() == 9)
        #expect(awaiterPolls.value == 2)
    }
}

/// Wakes the polling task and returns `.pending`: poll me again after the others.
private func yieldAgain(_ context: inout Context) -> Poll<Void> {
    context.waker.wake()
    return .pending
}
