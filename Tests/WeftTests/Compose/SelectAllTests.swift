import Testing
import Weft

@Suite("selectAll and selectOk")
struct SelectAllTests {
    @Test("selectAll yields the first to finish with its index, and hands back the others still running, in order")
    func firstWithRest() throws {
        let runtime = try Runtime(options: .deterministic(seed: 5))
        let delays = [30, 10, 20]
        let (output, index, rest) = try runtime.block(on: selectAll(delays.map { delay in
            sleepFuture(for: .milliseconds(delay)).map { delay }
        }))
        #expect(output == 10)
        #expect(index == 1)
        #expect(rest.count == 2)
        // The rest are the 30 ms and 20 ms sleeps, still running: select again.
        let (next, nextIndex, last) = try runtime.block(on: selectAll(rest))
        #expect(next == 20)
        #expect(nextIndex == 1)
        #expect(try runtime.block(on: last[0]) == 30)
        #expect(runtime.virtualTimeElapsed == .milliseconds(30))
    }

    @Test("selectAll over many seeds: when every branch is ready, each wins under some seed, and a seed replays its winner")
    func fairOverSeeds() throws {
        var winners = Set<Int>()
        try Runtime.forEachSeed(UInt64(0)..<60) { runtime, seed in
            let winner = try runtime.block(on: selectAll((0..<4).map { ready($0) })).index
            let replay = try Runtime(options: .deterministic(seed: seed))
            #expect(try replay.block(on: selectAll((0..<4).map { ready($0) })).index == winner, "seed \(seed)")
            winners.insert(winner)
        }
        #expect(winners == [0, 1, 2, 3])
    }

    @Test("selectOk yields the first success, dropping the failures on the way, and hands back the branches still running")
    func firstSuccess() throws {
        try Runtime.forEachSeed(UInt64(0)..<10) { runtime, seed in
            let futures: [AnyFuture<Result<Int, Planted>>] = [
                sleepFuture(for: .milliseconds(1)).map { .failure(Planted(0)) }.boxed(),
                sleepFuture(for: .milliseconds(5)).map { .success(5) }.boxed(),
                sleepFuture(for: .milliseconds(2)).map { .failure(Planted(2)) }.boxed(),
                sleepFuture(for: .milliseconds(9)).map { .success(9) }.boxed(),
            ]
            let (success, rest) = try runtime.block(on: selectOk(futures)).get()
            #expect(success == 5, "seed \(seed)")
            #expect(rest.count == 1, "seed \(seed)")
            #expect(try runtime.block(on: rest[0]).get() == 9, "seed \(seed)")
        }
    }

    @Test("selectOk of futures that all fail yields the last failure")
    func allFail() throws {
        let runtime = try Runtime(options: .deterministic(seed: 2))
        let outcome = try runtime.block(on: selectOk([3, 1, 2].map { delay in
            sleepFuture(for: .milliseconds(delay)).map { Result<Int, Planted>.failure(Planted(delay)) }
        }))
        #expect(outcome.failure == Planted(3))
    }

    @Test("selectOk over many seeds: when every branch succeeds at once, each wins under some seed")
    func selectOkFair() throws {
        var winners = Set<Int>()
        try Runtime.forEachSeed(UInt64(0)..<40) { runtime, _ in
            winners.insert(try runtime.block(on: selectOk((0..<3).map { ready(Result<Int, Planted>.success($0)) })).get().success)
        }
        #expect(winners == [0, 1, 2])
    }
}
