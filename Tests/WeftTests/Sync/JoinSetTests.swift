import Testing
import Weft

@Suite("JoinSet")
struct SyncJoinSetTests {
    @Test("a JoinSet yields results in completion order, then nil")
    func completionOrder() throws {
        let runtime = try Runtime()
        let results = try runtime.guardedBlock(on: pollFn { _ in .ready(()) }.then { _ -> CollectAll<JoinSet<Int>> in
            let set = JoinSet<Int>()
            #expect(throws: Never.self) {
                try set.spawn(yields(6).map { 3 })
                try set.spawn(yields(0).map { 1 })
                try set.spawn(yields(3).map { 2 })
            }
            return collectAll(set)
        })
        #expect(results.map { try? $0.get() } == [1, 2, 3])
    }

    @Test("tasks that finish while nobody polls the set come out in the order they finished (they came out in spawn order)")
    func completionOrderWhileNotPolled() throws {
        let runtime = try Runtime()
        let results = try runtime.guardedBlock(on: pollFn { _ -> Poll<JoinSet<Int>> in
            let set = JoinSet<Int>()
            try! set.spawn(yields(3).map { 1 })  // finishes second
            try! set.spawn(ready(2))  // finishes first
            return .ready(set)
        }.then { set in yields(10).map { set } }  // both finish before the set is polled
            .then { set in collectAll(set) })
        #expect(results.map { try? $0.get() } == [2, 1])
    }

    @Test("two tasks awaiting one set's next result are both served: each result wakes every task still waiting (the set kept only the last poller's waker: the first waited for ever)")
    func twoTasksAwaitingOneSet() throws {
        let runtime = try Runtime()
        // Not guarded: the watchdog's waker would keep a hang from being .stuck.
        let (first, second) = try runtime.block(on: pollFn { _ -> Poll<(JoinHandle<Result<Int, JoinError>?>, JoinHandle<Result<Int, JoinError>?>)> in
            let set = JoinSet<Int>()
            try! set.spawn(yields(4).map { 1 })
            try! set.spawn(yields(12).map { 2 })
            return .ready((spawn(set.nextFuture()), spawn(set.nextFuture())))
        }.then { join($0.0, $0.1) })
        let results = [try first.get()?.get(), try second.get()?.get()]
        #expect(results.compactMap { $0 }.sorted() == [1, 2], "\(results)")
    }

    @Test("dropping a JoinSet aborts every task still in it")
    func abortOnDrop() throws {
        let runtime = try Runtime()
        let flag = DropFlag()
        let set = Box<JoinSet<Void>?>(nil)
        let handles = Box<[AbortHandle]>([])
        try runtime.guardedBlock(on: pollFn { _ -> Poll<Void> in
            let joinSet = JoinSet<Void>()
            handles.value = [try! joinSet.spawn(sleepFuture(for: .seconds(30)).probed(flag)), try! joinSet.spawn(ready(()))]
            set.value = joinSet
            return .ready(())
        }.then { _ in yields(3) }.then { _ -> PollFn<Void> in
            #expect(!flag.isDropped, "the slow task is running")
            set.value = nil  // the last reference: deinit aborts what is left
            return yields(3)
        })
        #expect(handles.value.allSatisfy { $0.isFinished })
        #expect(flag.isDropped)
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("spawn returns an AbortHandle, not a JoinHandle the set would also poll: aborting through it ends the task, whose result the set yields as aborted")
    func abortThroughTheReturnedHandle() throws {
        let runtime = try Runtime()
        let results = try runtime.guardedBlock(on: pollFn { _ -> Poll<JoinSet<Int>> in
            let set = JoinSet<Int>()
            let slow = try! set.spawn(sleepFuture(for: .seconds(30)).map { 1 })
            try! set.spawn(ready(2))
            slow.abort()
            return .ready(set)
        }.then { set in set.collect() })
        #expect(results.count == 2)
        #expect(results.contains { $0.failure == JoinError(.aborted) })
        #expect(results.contains { (try? $0.get()) == 2 })
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("JoinSet next() works from async code on the loop")
    func asyncNext() throws {
        let runtime = try Runtime()
        let sum = try runtime.guardedBlock(on: AsyncFuture { () -> Int in
            let set = JoinSet<Int>()
            for n in 1...4 { _ = try? set.spawn(yields(n).map { n }) }
            var sum = 0
            while let result = try? await set.next() { sum += (try? result.get()) ?? 0 }
            return sum
        })
        #expect(sum == 10)
    }

    @Test("spawning on a JoinSet off any Weft loop throws wrongThread naming JoinSet.spawn, and the set stays usable on a loop")
    func spawnOffLoopThrows() async throws {
        let set = JoinSet<Int>()
        #expect(set.isEmpty)
        do {
            try set.spawn(ready(1))
            Issue.record("spawn off a loop did not throw")
        } catch {
            #expect(error.kind == .wrongThread)
            #expect(error.operation == "JoinSet.spawn")
            #expect("\(error)".contains("LoopThread.run"))
        }
        #expect(set.isEmpty)

        // The documented way: on a loop.
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let sum = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> Int in
            let onLoop = JoinSet<Int>()
            for n in 1...3 { try onLoop.spawn(sleepFuture(for: .milliseconds(n)).map { n }) }
            var sum = 0
            while let result = try await onLoop.next() { sum += try result.get() }
            return sum
        })
        #expect(sum == 6)
    }
}
