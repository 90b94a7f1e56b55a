import Testing
import Weft

@Suite("AsyncLock")
struct SyncAsyncLockTests {
    @Test("a lock held across an await keeps another task out until unlocked")
    func heldAcrossAwait() throws {
        let runtime = try Runtime()
        let lock = AsyncLock(0)
        let log = Box<[String]>([])
        let holder = runtime.spawn(lock.lockFuture().then { guard_ in
            log.value.append("holder locked")
            guard_.value += 1
            return sleepFuture(for: .milliseconds(20)).map {
                log.value.append("holder unlocks")
                guard_.unlock()
            }
        })
        let other = runtime.spawn(yields(1).then { _ in lock.lockFuture() }.map { guard_ in
            log.value.append("other locked, saw \(guard_.value)")
            guard_.value += 1
            guard_.unlock()
        })
        _ = try runtime.guardedBlock(on: join(holder, other))
        #expect(log.value == ["holder locked", "holder unlocks", "other locked, saw 1"])
        #expect(lock.tryLock()?.value == 2)
    }

    @Test("async tasks holding the lock across sleeps never overlap")
    func asyncCriticalSections() throws {
        let runtime = try Runtime()
        let lock = AsyncLock(0)
        let inside = Shared(0)
        let maxInside = Shared(0)
        let total = try runtime.guardedBlock(on: AsyncFuture { () -> Int in
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        for _ in 0..<3 {
                            guard let held = try? await lock.lock() else { return }
                            let now = inside.update { $0 += 1; return $0 }
                            maxInside.update { $0 = max($0, now) }
                            try? await sleep(for: .milliseconds(1))
                            held.value += 1
                            inside.update { $0 -= 1 }
                            held.unlock()
                        }
                    }
                }
            }
            return lock.tryLock()?.value ?? -1
        })
        #expect(total == 12)
        #expect(maxInside.value == 1)
    }

    @Test("a dropped pending lock future does not keep the lock from the next waiter")
    func droppedLockFuture() {
        let lock = AsyncLock("x")
        let held = lock.tryLock()
        var dropped = lock.lockFuture()
        var next = lock.lockFuture()
        #expect(!pollFuture(&dropped).isReady)
        #expect(!pollFuture(&next).isReady)
        held?.unlock()                 // handed to `dropped`
        _ = consume dropped            // passes it on
        #expect(pollFuture(&next).isReady)
    }
}
