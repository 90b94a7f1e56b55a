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

    @Test("work that runs turn after turn with no look at the OS between (each turn's queue emptied with a wake from another thread already waiting) is reported blocked as one stretch: eight turns of 40 ms make one event of about 320 ms (each turn was timed alone, under the 100 ms threshold: no event)")
    func blockedStretchOverSeveralTurns() async {
        // In a process of its own: the events' observer is the process's.
        await #expect(processExitsWith: .success) {
            let longest = Mutex<Duration>(.zero)
            RuntimeEvents.blockedThreshold = .milliseconds(100)
            RuntimeEvents.observe { event in
                if case .loopBlocked(let held) = event { longest.withLock { $0 = max($0, held) } }
            }
            let runtime = try Runtime()
            let turns = Counter()
            try runtime.block(on: pollFn { (context: inout Context) -> Poll<Void> in
                turns.value += 1
                if turns.value == 8 { return .ready(()) }
                let waker = context.waker
                let woken = Atomic<Bool>(false)
                DispatchQueue.global().async {
                    waker.wake()  // to the loop's inbox: taken at the next turn
                    woken.store(true, ordering: .releasing)
                }
                usleep(40_000)
                while !woken.load(ordering: .acquiring) { usleep(1_000) }  // waiting when the turn ends
                return .pending
            })
            let held = longest.withLock { $0 }
            if held < .milliseconds(250) {
                print("longest loopBlocked: \(held)")
                exit(1)
            }
        }
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
