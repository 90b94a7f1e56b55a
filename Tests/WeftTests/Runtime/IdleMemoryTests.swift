import Foundation
@testable import Weft
import Synchronization
import Testing

/// What a loop hands back when it goes idle after a burst (`HeapTrim`): the
/// attachments that keep memory (`LoopMemoryHolder`) are told first, and the
/// read buffers' cached pages go back to the OS.
@Suite("Memory a loop hands back when idle")
struct IdleMemoryTests {
    /// Counts the loop's idle releases.
    final class ReleaseCounter: LoopMemoryHolder {
        static let key = LoopAttachmentKey { _ in ReleaseCounter() }
        var releases = 0
        func releaseIdleMemory() { releases += 1 }
    }

    @Test("after a burst of 128 spawned tasks, the loop tells its memory-holding attachments before it blocks")
    func burstThenIdleReleases() throws {
        let runtime = try Runtime()
        let releasesBefore = runtime.loop.withAttachment(ReleaseCounter.key) { $0.releases }
        try runtime.block(on: ready(()).then { _ in
            joinAll((0..<128).map { _ in spawn(ready(())) })
        }.then { _ in sleepFuture(for: .milliseconds(250)) })  // idle: the loop blocks
        let releasesAfter = runtime.loop.withAttachment(ReleaseCounter.key) { $0.releases }
        #expect(releasesAfter > releasesBefore)
    }

    // Before the fix that came with this test, the ready queue kept the
    // capacity the burst made it grow to (131,072 slots, 1 MiB) for good.
    @Test("after a burst of 131,072 tasks spawned at once, the loop's ready queue gives back what it grew to when the loop goes idle")
    func burstThenIdleShrinksTheReadyQueue() throws {
        let runtime = try Runtime()
        try runtime.block(on: lazy {
            for _ in 0..<(1 << 17) { spawn(ready(())) }
            return yieldNow()
        })
        #expect(runtime.loop.ready.capacity >= 1 << 17, "the burst did not grow the queue: the test tests nothing")
        try runtime.block(on: lazy { sleepFuture(for: .milliseconds(250)) })  // idle: the loop blocks
        #expect(runtime.loop.ready.capacity <= 1024, "\(runtime.loop.ready.capacity) slots kept")
    }

    /// A job that counts its runs and, once, queues one more job behind it.
    struct CountingJob: LoopJob {
        let runs: Shared<Int>
        var then: (@Sendable () -> Void)? = nil
        func run() {
            runs.value += 1
            then?()
        }
        func loopClosed() {}
    }

    /// Ready once `runs` reached `count`; polled again at once until then (the
    /// loop runs its jobs between polls).
    static func until(_ runs: Shared<Int>, reach count: Int) -> PollFn<Void> {
        pollFn { context in
            if runs.value >= count { return .ready(()) }
            context.waker.wake()
            return .pending
        }
    }

    // Before the fix that came with this test, the registry kept the 131,072
    // slots (1 MiB) the burst made it grow to.
    @Test("after a burst of 131,072 tasks beside 1,000 that live on, the task registry shrinks to twice the live tasks when the loop goes idle, and the live ones still end and leave it")
    func burstThenIdleShrinksTheRegistry() throws {
        let runtime = try Runtime()
        let release = Notify()
        let liveEnded = Shared(0)
        try runtime.block(on: lazy {
            for _ in 0..<1_000 {
                spawn(release.notifiedFuture().map { _ in liveEnded.value += 1 })
            }
            for _ in 0..<(1 << 17) { spawn(ready(())) }
            return yieldNow()
        })
        #expect(runtime.loop.registry.capacity >= 1 << 17, "the burst did not grow the registry: the test tests nothing")
        try runtime.block(on: lazy { sleepFuture(for: .milliseconds(250)) })  // idle: the loop blocks
        #expect((1_001...4_096).contains(runtime.loop.registry.capacity), "\(runtime.loop.registry.capacity) slots kept")
        release.notifyWaiters()
        try runtime.block(on: lazy { yieldNow() })
        #expect(liveEnded.value == 1_000)
        #expect(runtime.loop.registry.count == 0)
    }

    // Before the fix that came with this test, the burst's end made no release
    // due: the release its spawns made due had run at the first idle, with
    // every task alive, and tasks that end (woken on the loop) report nothing.
    // The registry kept 262,144 slots, the ready queue 131,072.
    @Test("a burst of 131,072 tasks that ends after the loop first went idle, woken on the loop itself, still leaves the registry and the ready queue shrunk once the loop is idle again")
    func burstEndingAfterTheFirstIdleShrinks() throws {
        let runtime = try Runtime()
        let release = Notify()
        let allEnded = Notify()
        let left = Shared(1 << 17)
        try runtime.block(on: lazy {
            for _ in 0..<(1 << 17) {
                spawn(release.notifiedFuture().map { _ in
                    if left.update({ $0 -= 1; return $0 }) == 0 { allEnded.notifyOne() }
                })
            }
            // The loop idles first, with every task alive (on a slow run the
            // tasks' first polls may outlast this, and the test is weaker).
            spawn(sleepFuture(for: .milliseconds(300)).map { release.notifyWaiters() })  // wakes on the loop
            return allEnded.notifiedFuture()
        })
        #expect(runtime.loop.registry.count <= 1)
        try runtime.block(on: lazy { sleepFuture(for: .milliseconds(250)) })  // idle again
        #expect(runtime.loop.registry.capacity <= 4096, "\(runtime.loop.registry.capacity) slots kept in the registry")
        #expect(runtime.loop.ready.capacity <= 1024, "\(runtime.loop.ready.capacity) slots kept in the ready queue")
    }

    // Before the fix that came with this test, the loop shrank only the job
    // list that had just run; the two swap at every batch, and a job queued
    // by the burst's last one left the big list in the other, for good.
    @Test("after a burst of 100,000 jobs whose last queues one more, both job lists give back what they grew to when the loop goes idle")
    func burstOfJobsThenIdleShrinksBothLists() throws {
        let runtime = try Runtime()
        let runs = Shared(0)
        let loop = runtime.loop
        try runtime.block(on: lazy {
            for _ in 0..<99_999 { loop.enqueue(CountingJob(runs: runs)) }
            loop.enqueue(CountingJob(runs: runs, then: { EventLoop.current!.enqueue(CountingJob(runs: runs)) }))
            return Self.until(runs, reach: 100_001)
        })
        #expect(max(loop.jobs.capacity, loop.runningJobs.capacity) >= 100_000, "the burst did not grow a list: the test tests nothing")
        try runtime.block(on: lazy { sleepFuture(for: .milliseconds(250)) })  // idle: the loop blocks
        #expect(loop.jobs.capacity <= 4096 && loop.runningJobs.capacity <= 4096,
                "kept \(loop.jobs.capacity) and \(loop.runningJobs.capacity) slots")
    }

    // Before the fix that came with this test, the inbox's two lists kept
    // the 100,000 slots the burst made them grow to.
    @Test("after a burst of 100,000 jobs from another thread while the loop was busy, the inbox's lists give back what they grew to when the loop goes idle")
    func foreignBurstThenIdleShrinksTheInbox() throws {
        let runtime = try Runtime()
        let runs = Shared(0)
        let loop = runtime.loop
        let inbox = loop.inbox
        try runtime.block(on: lazy {
            // The loop is held here, in this poll, until the other thread has
            // queued every job: they wait in the inbox's list together.
            ForeignThread {
                for _ in 0..<100_000 { #expect(inbox.enqueue(QueuedJob(CountingJob(runs: runs)))) }
            }.join()
            return Self.until(runs, reach: 100_000)
        })
        let grown = loop.inbox.capacities(spare: loop.drainedItems)
        #expect(max(grown.queue, grown.spare) >= 100_000, "the burst did not grow a list: the test tests nothing")
        try runtime.block(on: lazy { sleepFuture(for: .milliseconds(250)) })  // idle: the loop blocks
        let kept = loop.inbox.capacities(spare: loop.drainedItems)
        #expect(kept.queue <= WakeInbox.keptCapacity && kept.spare <= WakeInbox.keptCapacity, "kept \(kept)")
    }

    @Test("after a burst, a loop waiting only for another thread's wake (no timer, no I/O) releases too (it released only before a wait for events)")
    func burstThenForeignWaitReleases() throws {
        let runtime = try Runtime()
        let releasesBefore = runtime.loop.withAttachment(ReleaseCounter.key) { $0.releases }
        let published = Mutex<Waker?>(nil)
        let done = Atomic<Bool>(false)
        let waiter = pollFn { (context: inout Context) -> Poll<Void> in
            if done.load(ordering: .acquiring) { return .ready(()) }
            published.withLock { $0 = context.waker }
            return .pending
        }
        let waker = ForeignThread {
            // 300 ms after the waiter's first poll, not after this thread's
            // start: the burst before it may take that long on a loaded
            // machine, and a wake there would leave the loop nothing to wait for.
            let deadline = ContinuousClock.now + .seconds(20)
            while published.withLock({ $0 }) == nil && ContinuousClock.now < deadline { usleep(1_000) }
            usleep(300_000)
            done.store(true, ordering: .releasing)
            published.withLock { $0 }?.wake()
        }
        defer { waker.join() }
        try runtime.block(on: ready(()).then { _ in
            joinAll((0..<128).map { _ in spawn(ready(())) })
        }.then { _ in waiter })
        let releasesAfter = runtime.loop.withAttachment(ReleaseCounter.key) { $0.releases }
        #expect(releasesAfter > releasesBefore)
    }

    @Test("the read buffers' idle release drops their pages: a cached buffer reads as zeros after it, and is still usable")
    func readBufferPagesAreDropped() throws {
        let runtime = try Runtime()
        let size = ReadBufferPool.bufferSize
        runtime.loop.withReadBuffers { pool in
            let buffer = pool.take()
            #expect(Int(bitPattern: buffer) % 4096 == 0)
            buffer.initializeMemory(as: UInt8.self, repeating: 0xA5, count: size)
            pool.give(buffer)
            pool.releaseIdleMemory()
            let again = pool.take()
            #expect(again == buffer)
            let bytes = UnsafeRawBufferPointer(start: again, count: size)
            #expect(bytes.allSatisfy { $0 == 0 })
            again.storeBytes(of: 7, as: UInt8.self)
            #expect(again.load(as: UInt8.self) == 7)
            pool.give(again)
        }
    }
}
