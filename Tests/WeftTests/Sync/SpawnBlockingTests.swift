import Glibc
import Testing
import Weft

extension TimingSensitive {
    @Suite("spawnBlocking")
    struct SpawnBlockingTests {
        @Test("spawnBlocking runs off the loop thread while timers keep firing on time")
        func runsOffTheLoopWhileTimersFire() throws {
            let runtime = try Runtime()
            let loopThread = UInt(pthread_self())
            let work = spawnBlocking { () -> UInt in
                usleep(200_000)  // blocks its pool thread, not the loop
                return UInt(pthread_self())
            }
            let ticks = interval(every: .milliseconds(10)).prefix(15).fold(0) { count, _ in count + 1 }
            let start = ContinuousClock.now
            let (worker, tickCount) = try runtime.block(on: join(work, ticks.map { ($0, ContinuousClock.now) }))
            #expect(try worker.get() != loopThread, "the closure ran on the loop thread")
            #expect(tickCount.0 == 15)
            // 15 ticks (the first at once) take 140 ms; the blocking work must not
            // delay them. Had it blocked the loop for its 200 ms, the ticks (missed
            // ones skipped) would resume after it: the 15th at 340 ms or later.
            // 300 ms leaves a loaded machine room and still catches that.
            #expect(tickCount.1 - start < .milliseconds(300), "ticks were held up: \(tickCount.1 - start)")
        }

        @Test("a dropped spawnBlocking never wakes its task and the runtime shuts down cleanly")
        func droppedWorkIsForgotten() throws {
            let runtime = try Runtime()
            let wakes = AtomicCounter()
            // Polled once with a waker that counts, then dropped while the job runs.
            let waited = try runtime.block(on: pollFn { _ in
                var work = spawnBlocking { () -> Int in usleep(100_000); return 1 }
                var counting = Context(waker: Waker { _ = wakes.increment() })
                return .ready(!work.poll(&counting).isReady)
            })
            #expect(waited, "the 100 ms job was done at its first poll")
            // The job finishes later on its pool thread; the loop hands it back and frees it.
            try runtime.block(on: sleepFuture(for: .milliseconds(150)))
            #expect(wakes.value == 0, "the dropped job's completion woke its waker")
            #expect(runtime.statistics.tasksAlive == 0)
            try runtime.shutdown()
            #expect(runtime.openHandleCount == 0)
        }
    }
}
