import Testing
import Weft

/// A consumer that takes `count` ticks from an interval of `period`, napping
/// `nap` after each. The interval starts at the first poll: made before the
/// loop ran, its first tick could be taken a period late on a loaded machine,
/// and the skip that follows would shift every index.
private struct SlowConsumer: Future {
    let period: Duration
    var ticks: Interval?
    let nap: Duration
    let count: Int
    var napping: Sleep?
    var seen: [Int] = []

    init(period: Duration, nap: Duration, count: Int) {
        self.period = period
        self.nap = nap
        self.count = count
    }

    mutating func poll(_ context: inout Context) -> Poll<[Int]> {
        if ticks == nil { ticks = interval(every: period) }
        while true {
            if napping != nil {
                guard case .ready = napping!.poll(&context) else { return .pending }
                napping = nil
            }
            guard case .ready(let tick) = ticks!.pollNext(&context) else { return .pending }
            seen.append(tick!)
            if seen.count == count { return .ready(seen) }
            napping = sleepFuture(for: nap)
        }
    }
}

extension TimingSensitive {
    @Suite("Interval")
    struct IntervalTests {
        @Test("interval(every: 10 ms).prefix(5) yields 0 through 4 over at least 40 ms")
        func fiveTicks() throws {
            // A tick taken a period late skips the next index, as it should:
            // on a loaded machine that can happen to any attempt, so an
            // attempt is on time only with every index and in time.
            let (ticks, elapsed) = try onTimeInOneOf({ () throws -> ([Int], Duration) in
                let runtime = try Runtime()
                let start = ContinuousClock.now
                let ticks = try runtime.guardedBlock(on: lazy {
                    interval(every: .milliseconds(10)).prefix(5).fold([Int]()) { $0 + [$1] }
                })
                let elapsed = ContinuousClock.now - start
                #expect(elapsed >= .milliseconds(40))
                #expect(runtime.pendingTimerCount == 0)
                return (ticks, elapsed)
            }, isOnTime: { $0.0 == [0, 1, 2, 3, 4] && $0.1 < .milliseconds(40 + 100) })
            #expect(ticks == [0, 1, 2, 3, 4], "a tick a period late in each of 3 attempts, or an index skipped on time")
            #expect(elapsed < .milliseconds(40 + 100), "took \(elapsed) in each of 3 attempts")
        }

        @Test("the first tick is immediate")
        func firstTickIsImmediate() throws {
            let runtime = try Runtime()
            let start = ContinuousClock.now
            let (first, elapsed) = try runtime.guardedBlock(on:
                interval(every: .seconds(10)).next().map { ($0.element, ContinuousClock.now - start) }
            )
            #expect(first == 0)
            // A first tick that waited a period would come after 10 s: 1 s is
            // loose enough for a loaded machine and still catches that.
            #expect(elapsed < .seconds(1))
            #expect(runtime.pendingTimerCount == 0)
        }

        @Test("a consumer that falls behind sees skipped tick indices")
        func slowConsumerSkipsTicks() throws {
            let runtime = try Runtime()
            let seen = try runtime.guardedBlock(on: SlowConsumer(
                period: .milliseconds(10), nap: .milliseconds(35), count: 4
            ))
            #expect(seen.count == 4)
            #expect(seen[0] == 0)
            #expect(seen[1] == 1)  // the tick that was due during the first nap, at once
            #expect(seen[2] - seen[1] >= 2, "no tick skipped: \(seen)")
            #expect(seen[3] - seen[2] >= 2, "no tick skipped: \(seen)")
        }

        @Test("next().then hands back the rest of the stream, which keeps the schedule")
        func nextThenKeepsSchedule() throws {
            let runtime = try Runtime()
            let start = ContinuousClock.now
            // Made at the first poll: made before the loop ran, its first tick
            // could be a period late, and the second index skipped.
            let (first, second) = try runtime.guardedBlock(on: lazy {
                interval(every: .milliseconds(15)).next().then { first, rest in
                    rest.next().map { (first, $0.element) }
                }
            })
            #expect(first == 0)
            #expect(second == 1)
            #expect(ContinuousClock.now - start >= .milliseconds(15))
        }

        @Test("dropping an interval disarms its timer")
        func droppedIntervalDisarms() throws {
            let runtime = try Runtime()
            let outcome = try runtime.guardedBlock(on: select(
                either: interval(every: .seconds(30)).prefix(2).fold(0) { $0 + $1 },
                or: sleepFuture(for: .milliseconds(5)).map { "timer" }
            ))
            #expect(outcome.right == "timer")
            #expect(runtime.pendingTimerCount == 0)
        }
    }
}
