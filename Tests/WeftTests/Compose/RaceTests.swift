import Testing
import Weft

@Suite("race")
struct RaceTests {
    @Test("race returns the index and output of the winner and drops the others")
    func raceReturnsWinnerAndDropsOthers() throws {
        let runtime = try Runtime()
        let flags = (0..<5).map { _ in DropFlag() }
        // The winner's 300 ms, not 5: a sleep's deadline is set when it is
        // made, and a probe only when its branch is first polled, so a winner
        // already due at the first poll (over 5 ms later, under
        // ThreadSanitizer in a loaded run) left the branches after it unpolled
        // and their flags unset.
        let delays = [60_000, 40_000, 300, 50_000, 30_000]
        let (winner, losersDropped, timers) = try runtime.guardedBlock(on:
            race(zip(flags, delays).map { flag, delay in
                sleepFuture(for: .milliseconds(delay)).map { delay }.probed(flag)
            }).map { ($0, flags.map(\.isDropped), runtime.pendingTimerCount) }
        )
        #expect(winner.index == 2)
        #expect(winner.output == 300)
        #expect(losersDropped == [true, true, true, true, true])
        #expect(timers == 0)
    }

    @Test("between always-ready futures every branch wins sometimes")
    func raceIsFair() {
        var wins = [0, 0, 0, 0]
        for _ in 0..<1_000 {
            var contest = race((0..<4).map { ready($0) })
            guard case .ready(let winner) = pollOnce(&contest) else {
                Issue.record("a race of ready futures was pending")
                return
            }
            #expect(winner.index == winner.output)
            wins[winner.index] += 1
        }
        #expect(wins.allSatisfy { $0 >= 100 }, "wins per branch: \(wins)")
    }

    @Test("race of type-erased futures of different kinds")
    func raceOfBoxedFutures() throws {
        let runtime = try Runtime()
        let winner = try runtime.guardedBlock(on: race([
            sleepFuture(for: .seconds(60)).map { "sleep" }.boxed(),
            pending(String.self).boxed(),
            yields(3).map { "yields" }.boxed(),
        ]))
        #expect(winner.index == 2)
        #expect(winner.output == "yields")
        #expect(runtime.pendingTimerCount == 0)
    }
}
