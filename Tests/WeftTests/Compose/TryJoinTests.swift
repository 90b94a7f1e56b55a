import Testing
import Weft

@Suite("tryJoin and tryJoinAll")
struct TryJoinTests {
    @Test("tryJoin of two successes yields both, in argument order")
    func twoSuccesses() throws {
        let runtime = try Runtime(options: .deterministic(seed: 1))
        let both = try runtime.block(on: tryJoin(
            yields(2).map { Result<Int, Planted>.success(1) },
            ready(Result<String, Planted>.success("two"))
        ))
        let (number, text) = try both.get()
        #expect(number == 1)
        #expect(text == "two")
    }

    @Test("the first failure of a tryJoin is its output, and the other children are dropped before it returns")
    func firstFailureDropsTheOthers() throws {
        try Runtime.forEachSeed(UInt64(0)..<20) { runtime, seed in
            let slow = DropFlag()
            let stuck = DropFlag()
            let outcome = try runtime.block(on: tryJoin(
                sleepFuture(for: .seconds(5)).map { [probe = slow.makeProbe()] in probe.touch(); return Result<Int, Planted>.success(1) },
                yields(3).map { Result<String, Planted>.failure(Planted(2)) },
                pendingForever(Result<Bool, Planted>.self, probe: stuck.makeProbe())
            ))
            #expect(outcome.failure == Planted(2), "seed \(seed)")
            #expect(slow.isDropped && stuck.isDropped, "seed \(seed): the other children live on")
            #expect(runtime.virtualTimeElapsed == .zero, "seed \(seed): the 5 s sleep was waited for")
        }
    }

    @Test("a child of a tryJoin that succeeded is not polled again while the others run")
    func finishedChildNotRepolled() throws {
        let runtime = try Runtime()
        let fast = Counter()
        let slow = Counter()
        _ = try runtime.block(on: tryJoin(
            counted(Result<Int, Planted>.success(1), polls: fast),
            counted(Result<Int, Planted>.success(2), after: 5, polls: slow)
        ))
        #expect(fast.value == 1)
        #expect(slow.value == 6)
    }

    @Test("the variadic tryJoin of 5 yields the tuple of successes, or the first failure with every other child dropped")
    func variadic() throws {
        let runtime = try Runtime(options: .deterministic(seed: 7))
        let five = try runtime.block(on: tryJoin(
            ready(Result<Int, Planted>.success(1)),
            yields(1).map { Result<String, Planted>.success("b") },
            sleepFuture(for: .milliseconds(3)).map { Result<Bool, Planted>.success(true) },
            ready(Result<Double, Planted>.success(4.5)),
            yields(2).map { Result<[Int], Planted>.success([5]) }
        )).get()
        #expect(five.0 == 1 && five.1 == "b" && five.2 && five.3 == 4.5 && five.4 == [5])

        let flags = (0..<3).map { _ in DropFlag() }
        let failed = try runtime.block(on: tryJoin(
            pendingForever(Result<Int, Planted>.self, probe: flags[0].makeProbe()),
            pendingForever(Result<Int, Planted>.self, probe: flags[1].makeProbe()),
            yields(1).map { Result<Int, Planted>.failure(Planted(3)) },
            pendingForever(Result<Int, Planted>.self, probe: flags[2].makeProbe())
        ))
        #expect((failed.failure as? Planted) == Planted(3))
        #expect(flags.allSatisfy { $0.isDropped })
    }

    @Test("dropping a pending tryJoin drops every child")
    func dropDropsChildren() throws {
        let flags = (0..<2).map { _ in DropFlag() }
        var join: TryJoin2<PollFn<Result<Int, Planted>>, PollFn<Result<Int, Planted>>, Planted>? = tryJoin(
            pendingForever(probe: flags[0].makeProbe()), pendingForever(probe: flags[1].makeProbe())
        )
        #expect(!join!.pollOnce().isReady)
        #expect(!flags[0].isDropped)
        join = nil
        #expect(flags.allSatisfy { $0.isDropped })
    }

    @Test("tryJoinAll yields the successes in list order, whatever order they finish in")
    func tryJoinAllOrder() throws {
        try Runtime.forEachSeed(UInt64(0)..<10) { runtime, seed in
            var random = TestRandom(seed: seed)
            let futures = (0..<50).map { index in
                sleepFuture(for: .milliseconds(random.next(below: 20))).map { Result<Int, Planted>.success(index) }
            }
            let all = try runtime.block(on: tryJoinAll(futures))
            #expect(try all.get() == Array(0..<50), "seed \(seed)")
        }
    }

    @Test("the first failure of tryJoinAll is its output and drops every other future at once")
    func tryJoinAllFailure() throws {
        let runtime = try Runtime(options: .deterministic(seed: 3))
        let flags = (0..<10).map { _ in DropFlag() }
        // Built in the call, so that the join holds the only copies of the probes.
        let outcome = try runtime.block(on: tryJoinAll({
            var futures = flags.map { flag in
                AnyFuture(pendingForever(Result<Int, Planted>.self, probe: flag.makeProbe()))
            }
            futures.insert(AnyFuture(sleepFuture(for: .milliseconds(4)).map { Result<Int, Planted>.failure(Planted(9)) }), at: 4)
            return futures
        }()))
        #expect(outcome.failure == Planted(9))
        #expect(flags.allSatisfy { $0.isDropped })
        #expect(runtime.virtualTimeElapsed == .milliseconds(4))
    }

    @Test("tryJoinAll and tryForEachConcurrent polled again after failing trap, as a future polled after it completed does (they returned success: the failure's cleanup left them looking finished)")
    func repollAfterFailureTraps() async {
        await #expect(processExitsWith: .failure) {
            var join = tryJoinAll([ready(Result<Int, Planted>.failure(Planted(1)))])
            _ = pollOnce(&join)  // the failure
            _ = pollOnce(&join)
        }
        await #expect(processExitsWith: .failure) {
            var each = iter([1]).tryForEachConcurrent(limit: 1) { _ in ready(Result<Void, Planted>.failure(Planted(2))) }
            _ = pollOnce(&each)  // the failure
            _ = pollOnce(&each)
        }
    }

    @Test("tryJoinAll of no futures is ready at once with no successes")
    func tryJoinAllEmpty() throws {
        var join = tryJoinAll([Ready<Result<Int, Planted>>]())
        #expect(try join.pollOnce().map { try $0.get() } == .ready([]))
    }
}
