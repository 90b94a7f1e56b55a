import Testing
import Weft

@Suite("AsyncSemaphore")
struct SyncAsyncSemaphoreTests {
    @Test("waiters get permits in the order they asked")
    func fifoFairness() throws {
        let runtime = try Runtime()
        let semaphore = AsyncSemaphore(permits: 0)
        let order = Box<[Int]>([])
        let handles = (0..<5).map { index in
            runtime.spawn(semaphore.acquireFuture().map { permit in
                order.value.append(index)
                permit.release()
            })
        }
        runtime.spawn(yields(2).map { semaphore.addPermits(1) })
        _ = try runtime.guardedBlock(on: joinAll(handles))
        #expect(order.value == [0, 1, 2, 3, 4])
        #expect(semaphore.availablePermits == 1)
    }

    @Test("a large request at the head of the queue is not overtaken by smaller ones")
    func noBarging() {
        let semaphore = AsyncSemaphore(permits: 1)
        var big = semaphore.acquireFuture(2)
        var small = semaphore.acquireFuture(1)
        #expect(!pollFuture(&big).isReady)
        #expect(!pollFuture(&small).isReady)
        #expect(semaphore.tryAcquire() == nil)
        semaphore.addPermits(1)
        guard case .ready(let bigPermit) = pollFuture(&big) else {
            Issue.record("the head request was not granted")
            return
        }
        #expect(bigPermit.permits == 2)
        #expect(!pollFuture(&small).isReady)
        bigPermit.release()
        #expect(pollFuture(&small).isReady)
    }

    @Test("dropping pending and granted acquire futures loses no permit")
    func droppedAcquireLosesNothing() {
        let semaphore = AsyncSemaphore(permits: 0)
        var pending = semaphore.acquireFuture()
        var granted = semaphore.acquireFuture()
        var last = semaphore.acquireFuture()
        #expect(!pollFuture(&pending).isReady)
        #expect(!pollFuture(&granted).isReady)
        #expect(!pollFuture(&last).isReady)
        _ = consume pending           // leaves the queue
        semaphore.addPermits(1)       // granted to `granted`, never observed
        _ = consume granted           // gives it back, on to `last`
        guard case .ready(let permit) = pollFuture(&last) else {
            Issue.record("the permit was lost with a dropped acquire")
            return
        }
        permit.release()
        #expect(semaphore.availablePermits == 1)
    }

    @Test("a permit goes back when it is deinitialized")
    func permitReleasesOnDeinit() {
        let semaphore = AsyncSemaphore(permits: 2)
        do {
            let permit = semaphore.tryAcquire(2)
            #expect(permit != nil)
            #expect(semaphore.availablePermits == 0)
        }
        #expect(semaphore.availablePermits == 2)
    }

    @Test("acquire works from async code and from foreign threads")
    func asyncAndForeign() throws {
        let runtime = try Runtime()
        let semaphore = AsyncSemaphore(permits: 0)
        // A permit added by another thread wakes an acquire that waits for it.
        let latch = FirstPollLatch()
        let thread = ForeignThread {
            latch.waitForFirstPoll()
            semaphore.addPermits(1)
        }
        defer { thread.join() }
        let permit = try runtime.guardedBlock(on: latch.watching(semaphore.acquireFuture()))
        #expect(permit.permits == 1)
        #expect(latch.waited, "a permit was there at the first poll: the foreign wake was not tested")
        permit.release()
        // And from async code.
        let permits = try runtime.guardedBlock(on: AsyncFuture { () -> Int in
            (try? await semaphore.acquire())?.permits ?? 0
        })
        #expect(permits == 1)
    }
}
