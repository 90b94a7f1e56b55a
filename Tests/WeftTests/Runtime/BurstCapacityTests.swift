@testable import Weft
import Testing

/// Structures that a burst fills and that live on afterwards give back what
/// they grew to once the burst is gone: removals keep an array's or a
/// dictionary's capacity, which no heap trim can return while it is allocated.
/// Before the fixes that came with these tests, each kept its peak (100,000
/// children of a future set: megabytes, for the set's life).
@Suite("Memory a burst leaves in long-lived structures")
struct BurstCapacityTests {
    @Test("a future set whose 100,000 children all finished gives back their slots and wakers, and runs new children as before")
    func futureSetStartsAfresh() {
        var set = FutureSet<Ready<Int>>()
        for value in 0..<100_000 { set.insert(ready(value)) }
        var context = Context(waker: .noop)
        var total = 0
        var finished = 0
        while case .ready(let output?) = set.pollNext(&context) {
            total += output
            finished += 1
        }
        #expect(finished == 100_000 && total == (0..<100_000).reduce(0, +))
        #expect(set.isEmpty)
        #expect(set.children.capacity <= 1024 && set.wakers.count <= 1024 && set.freeSlots.capacity <= 1024,
                "kept \(set.children.capacity) slots, \(set.wakers.count) wakers")
        // Used again: slots from 0, every output once.
        #expect(set.insert(ready(7)) == 0)
        #expect(set.insert(ready(8)) == 1)
        var outputs: [Int] = []
        while case .ready(let output?) = set.pollNext(&context) { outputs.append(output) }
        #expect(outputs.sorted() == [7, 8])
    }

    @Test("children that wait, inserted after a burst of 2,000 emptied the set and it started afresh, are woken and finish: no wake goes to a stale slot")
    func futureSetWakesAfterStartingAfresh() throws {
        let runtime = try Runtime()
        let release = Notify()
        var set = FutureSet<AnyFuture<Int>>()
        for value in 0..<2_000 { set.insert(AnyFuture(sleepFuture(for: .milliseconds(1)).map { value })) }
        var burst = 0
        var later: [Int] = []
        try runtime.block(on: pollFn { context -> Poll<Void> in
            while true {
                switch set.pollNext(&context) {
                case .pending:
                    return .pending
                case .ready(let value?) where value < 2_000:
                    burst += 1
                case .ready(let value?):
                    later.append(value)
                case .ready(nil) where burst == 2_000 && later.isEmpty:
                    #expect(set.children.capacity <= 1024, "the set kept \(set.children.capacity) slots")
                    // Children that wait for a wake from outside the set.
                    for value in 2_000..<2_003 { set.insert(AnyFuture(release.notifiedFuture().map { _ in value })) }
                    for value in 2_003..<2_005 { set.insert(AnyFuture(sleepFuture(for: .milliseconds(5)).map { value })) }
                    release.notifyWaiters()
                case .ready(nil):
                    return .ready(())
                }
            }
        })
        #expect(burst == 2_000)
        #expect(later.sorted() == Array(2_000..<2_005))
    }

    @Test("a join set's handles by slot give back what 5,000 tasks made them grow to once the tasks are joined")
    func joinSetHandles() throws {
        let runtime = try Runtime()
        let set = JoinSet<Int>()
        let results = try runtime.block(on: lazy {
            for value in 0..<5_000 { try! set.spawn(sleepFuture(for: .milliseconds(1)).map { value }) }
            #expect(set.handles.capacity >= 5_000, "the burst did not grow the handles: the test tests nothing")
            return set.collect()
        })
        #expect(results.count == 5_000)
        #expect(set.handles.isEmpty && set.handles.capacity <= 1024, "kept \(set.handles.capacity) slots")
    }

    @Test("a cancellation token keeps no room for 100,000 children gone, nor does the arrival-ordered map under it, emptied by removals or at once")
    func tokenChildrenAndArrivalOrdered() {
        let root = CancellationToken()
        var children = (0..<100_000).map { _ in root.child() }
        #expect(root.state.withLock { $0.children.capacity } >= 100_000)
        children.removeAll()
        #expect(root.state.withLock { $0.children.capacity } <= 1024)
        #expect(children.isEmpty)

        let keys = (0..<10_000).map { _ in Probe() }
        var map = ArrivalOrdered<Int>()
        for (index, key) in keys.enumerated() { map.update(ObjectIdentifier(key), initial: index) { _ in } }
        for key in keys.dropFirst(3) { #expect(map.remove(ObjectIdentifier(key)) != nil) }
        #expect(map.capacity <= 1024, "kept \(map.capacity) slots after removals")
        #expect(map.takeAll() == [0, 1, 2], "what was left, in arrival order")
        for (index, key) in keys.enumerated() { map.update(ObjectIdentifier(key), initial: index) { _ in } }
        #expect(map.takeAll() == Array(0..<10_000))
        #expect(map.capacity <= 1024, "kept \(map.capacity) slots after taking all")
    }

    final class Probe {}

    @Test("a LoopThread's record of its spawned tasks gives back what 5,000 tasks at once made it grow to")
    func loopThreadSpawnRecord() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let release = CancellationToken()  // releases a task that waits later too
        let tasks = (0..<5_000).map { value in loop.spawn { () async throws -> Int in
            try await release.cancelled()
            return value
        } }
        // All recorded before any ends.
        #expect(loop.spawnRecordCapacity.running >= 5_000, "the burst did not grow the record: the test tests nothing")
        release.cancel()
        var total = 0
        for task in tasks { total += try await awaitWithin(.seconds(60), task) }
        #expect(total == (0..<5_000).reduce(0, +))
        let record = loop.spawnRecordCapacity
        #expect(record.running <= 1024 && record.finishedBeforeStarted <= 1024, "kept \(record)")
    }

    @Test("the loop's list of awaits suspended without a waker of their task's gives back what 5,000 waiting tasks made it grow to")
    func suspendedAwaits() throws {
        let runtime = try Runtime()
        let release = Notify()
        let ended = Shared(0)
        for _ in 0..<5_000 {
            Task(executorPreference: runtime.taskExecutor) {
                try? await release.notified()
                ended.update { $0 += 1 }
            }
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while runtime.loop.executors.suspended.count < 5_000 && ContinuousClock.now < deadline {
            try runtime.block(on: lazy { sleepFuture(for: .milliseconds(10)) })
        }
        #expect(runtime.loop.executors.suspended.count == 5_000, "the burst did not grow the list: the test tests nothing")
        release.notifyWaiters()
        while ended.value < 5_000 && ContinuousClock.now < deadline {
            try runtime.block(on: lazy { sleepFuture(for: .milliseconds(10)) })
        }
        #expect(ended.value == 5_000)
        #expect(runtime.loop.executors.suspended.isEmpty)
        #expect(runtime.loop.executors.suspended.capacity <= 1024, "kept \(runtime.loop.executors.suspended.capacity) slots")
    }

    /// Idles the runtime in turns of 150 ms (the heap trim, which frees the
    /// slab's end, runs at most every 100 ms) until the timer wheel's slab
    /// holds at most `nodes`, 20 turns at most; the slab then.
    static func idle(_ runtime: Runtime, untilTheSlabHolds nodes: Int) throws -> Int {
        for _ in 0..<20 where runtime.loop.timers.slabCounts.nodes > nodes {
            try runtime.block(on: lazy { sleepFuture(for: .milliseconds(150)) })
        }
        return runtime.loop.timers.slabCounts.nodes
    }

    @Test("the timer wheel's slab gives back what 100,000 timers made it grow to while a timer armed before them stays armed (it did only once no timer at all was armed)")
    func timerSlabBelowALongLivedTimer() throws {
        let runtime = try Runtime()
        let longLived = runtime.spawn(sleepFuture(for: .seconds(3600)))  // polled first: a low node
        _ = try runtime.block(on: lazy { joinAll((0..<100_000).map { _ in timeoutFuture(.seconds(3600), yieldNow()) }) })
        #expect(runtime.loop.timers.slabCounts.nodes >= 100_000, "the burst did not grow the slab: the test tests nothing")
        let kept = try Self.idle(runtime, untilTheSlabHolds: 4096)
        #expect(kept <= 4096, "the slab kept \(kept) nodes")
        // Still a working wheel: a burst of short sleeps all end.
        _ = try runtime.block(on: lazy { joinAll((0..<10_000).map { _ in sleepFuture(for: .milliseconds(5)) }) })
        #expect(!longLived.isFinished)
        longLived.abort()
    }

    @Test("a timer armed after 100,000 others, at the slab's top, holds its end only until it is armed again: the slab is cut once its end is free, and the timer armed anew fires")
    func timerSlabAboveALongLivedTimer() throws {
        let runtime = try Runtime()
        // Armed throughout, low in the slab: the wheel is never empty (an
        // empty one gives back its whole slab at once).
        let anchor = runtime.spawn(sleepFuture(for: .seconds(3600)))
        let release = Notify()
        let burst = runtime.spawn(joinAll((0..<100_000).map { _ in timeoutFuture(.seconds(3600), release.notifiedFuture()) }))
        _ = try runtime.block(on: lazy { yieldNow() })  // the burst's timers armed
        let top = runtime.spawn(sleepFuture(for: .seconds(3600)))
        _ = try runtime.block(on: lazy { yieldNow() })  // armed above them
        release.notifyWaiters()
        let outcomes = try runtime.block(on: burst).get()
        #expect(outcomes.count == 100_000)
        #expect(runtime.loop.timers.slabCounts.nodes > 100_000)
        let heldByTheTop = try Self.idle(runtime, untilTheSlabHolds: 4096)
        #expect(heldByTheTop > 100_000, "the top timer's node was cut off while armed")
        // Armed again (an interval's next tick, a deadline pushed back): the
        // new timer takes a low node, the old top one comes free.
        top.abort()
        let again = runtime.spawn(sleepFuture(for: .milliseconds(400)))
        let kept = try Self.idle(runtime, untilTheSlabHolds: 4096)
        #expect(kept <= 4096, "the slab kept \(kept) nodes")
        _ = try runtime.block(on: timeoutFuture(.seconds(60), again)).get()
        #expect(!anchor.isFinished)
        anchor.abort()
    }

    // Before the fix that came with this test, no release of the burst's
    // timers asked for a look: the top ones were freed before the slab was
    // mostly free, the others below its upper half.
    @Test("the timer slab is cut also when the burst's later timers, at its top, were freed first")
    func timerSlabCutWhenItsTopWasFreedFirst() throws {
        let runtime = try Runtime()
        let anchor = runtime.spawn(sleepFuture(for: .seconds(3600)))  // node 0, armed throughout
        // Armed in this order (the ready queue's): 40,000 low nodes, then
        // 60,000 above them; the high ones end first, while the slab is still
        // well used, then the low ones. Ended by notifications, not by their
        // deadlines: on a slow run, short sleeps ended before the later ones
        // were armed, and their nodes were taken again.
        let (lowEnds, highEnds) = (Notify(), Notify())
        let low = runtime.spawn(joinAll((0..<40_000).map { _ in timeoutFuture(.seconds(3600), lowEnds.notifiedFuture()) }))
        let high = runtime.spawn(joinAll((0..<60_000).map { _ in timeoutFuture(.seconds(3600), highEnds.notifiedFuture()) }))
        _ = try runtime.block(on: lazy { yieldNow() })  // all armed
        #expect(runtime.loop.timers.slabCounts.nodes > 100_000, "the burst did not grow the slab: the test tests nothing")
        highEnds.notifyWaiters()
        _ = try runtime.block(on: high)
        lowEnds.notifyWaiters()
        _ = try runtime.block(on: low)
        let kept = try Self.idle(runtime, untilTheSlabHolds: 4096)
        #expect(kept <= 4096, "the slab kept \(kept) nodes")
        #expect(!anchor.isFinished)
        anchor.abort()
    }
}
