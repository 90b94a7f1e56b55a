import Testing
import Weft

@Suite("select(either:or:)")
struct SelectTests {
    @Test("between two always-ready futures each branch wins a substantial share")
    func selectIsFair() {
        var leftWins = 0
        var rightWins = 0
        for _ in 0..<1_000 {
            var contest = select(either: ready("left"), or: ready(2))
            switch pollOnce(&contest) {
            case .ready(.left(let value)):
                #expect(value == "left")
                leftWins += 1
            case .ready(.right(let value)):
                #expect(value == 2)
                rightWins += 1
            case .pending:
                Issue.record("a select of two ready futures was pending")
            }
        }
        #expect(leftWins >= 200, "left won \(leftWins) of 1,000")
        #expect(rightWins >= 200, "right won \(rightWins) of 1,000")
        #expect(leftWins + rightWins == 1_000)
    }

    @Test("the first branch to finish wins and the other is dropped at once")
    func loserIsDropped() throws {
        let runtime = try Runtime()
        let flag = DropFlag()
        let (outcome, droppedAtWin) = try runtime.guardedBlock(on:
            select(
                either: sleepFuture(for: .seconds(60)).map { 1 }.probed(flag),
                // Made at the first poll: made before, it could be due by then
                // on a loaded machine and win before the slow branch (whose
                // probe is made at its first poll) was polled at all.
                or: lazy { sleepFuture(for: .milliseconds(5)) }.map { "fast" }
            ).map { ($0, flag.isDropped) }
        )
        #expect(outcome.right == "fast")
        #expect(outcome.left == nil)
        #expect(droppedAtWin)
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("a select stays pending while neither branch is ready, and wakes for either")
    func pendingUntilEitherBranch() throws {
        let runtime = try Runtime()
        let left = Mailbox<Int>()
        let right = Mailbox<String>()
        let contest = runtime.spawn(select(either: left.receive(), or: right.receive()))
        try runtime.block(on: yieldNow())
        #expect(!contest.isFinished)
        #expect(left.waker != nil && right.waker != nil)

        right.send("right")
        let outcome = try runtime.block(on: contest)
        #expect(try outcome.get().right == "right")
    }
}
