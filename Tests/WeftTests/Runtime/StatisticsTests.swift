import Foundation
import Synchronization
import Testing
import Weft

@Suite("Runtime statistics")
struct StatisticsTests {
    @Test("time waiting for a timer counts as blocked, not busy")
    func sleepingCountsAsBlocked() throws {
        let runtime = try Runtime()
        let start = ContinuousClock.now
        try runtime.block(on: sleepFuture(for: .milliseconds(200)))
        let elapsed = ContinuousClock.now - start
        let blocked = Duration.nanoseconds(Int64(runtime.statistics.nanosecondsBlocked))
        // Half: a loaded machine may hold the thread before its wait (busy
        // time), and one counting the wait as busy still shows about none.
        #expect(blocked >= .milliseconds(100), "blocked \(blocked) of \(elapsed)")
        #expect(blocked <= elapsed)
    }

    @Test("wakes from another thread are counted as foreign, wakes on the loop as local")
    func foreignAndLocalWakesAreCounted() throws {
        let runtime = try Runtime()
        let published = Mutex<Waker?>(nil)
        let wokenFromOutside = Atomic<Bool>(false)
        let waiter = pollFn { (context: inout Context) -> Poll<Void> in
            if wokenFromOutside.load(ordering: .acquiring) { return .ready(()) }
            published.locked { $0 = context.waker }
            return .pending
        }
        let thread = Thread {
            while published.locked({ $0 == nil }) { usleep(1_000) }
            wokenFromOutside.store(true, ordering: .releasing)
            published.locked { $0 }?.wake()
        }
        thread.start()
        // Apart: joined, yieldNow's local wake re-polled the waiter too, which
        // could then see the flag before the foreign wake came (so a wake of
        // a finished task, not counted).
        try runtime.block(on: waiter)
        try runtime.block(on: yieldNow())
        #expect(runtime.statistics.foreignWakes >= 1)
        #expect(runtime.statistics.localWakes >= 1, "yieldNow wakes its task on the loop")
    }
}
