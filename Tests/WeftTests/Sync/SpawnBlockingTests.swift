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
            let work = spawnBlocking { () -> (thread: UInt, end: ContinuousClock.Instant) in
                usleep(200_000)  // blocks its pool thread, not the loop
                return (UInt(pthread_self()), ContinuousClock.now)
            }
            // When each of 15 ticks (the first at once, one every 10 ms) came,
            // the interval made at the first poll.
            let ticks = lazy {
                interval(every: .milliseconds(10)).prefix(15).fold([ContinuousClock.Instant]()) { times, _ in times + [ContinuousClock.now] }
            }
            let (worker, tickTimes) = try runtime.block(on: join(work, ticks))
            let (thread, end) = try worker.get()
            #expect(thread != loopThread, "the closure ran on the loop thread")
            #expect(tickTimes.count == 15)
            // The blocking work must not hold the ticks up: had it blocked the
            // loop for its 200 ms, at most the first would come before it
            // ended. Not a bound on when the 15th came (a tick taken late skips
            // the next, so lateness adds up): 5 of the 15 within the work's
            // 200 ms leave a loaded machine more than 100 ms of it.
            let ticksBeforeTheEnd = tickTimes.filter { $0 < end }.count
            #expect(ticksBeforeTheEnd >= 5, "ticks were held up: \(ticksBeforeTheEnd) of 15 came before the blocking work ended")
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
