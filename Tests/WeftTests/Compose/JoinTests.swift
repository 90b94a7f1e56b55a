import Testing
import Weft

@Suite("join and joinAll")
struct JoinTests {
    @Test("join of 3 futures of different types yields the tuple of their outputs")
    func joinThree() throws {
        let runtime = try Runtime()
        let (number, text, flag) = try runtime.guardedBlock(on: join(
            sleepFuture(for: .milliseconds(5)).map { 1 },
            yields(2).map { "two" },
            ready(true)
        ))
        #expect(number == 1)
        #expect(text == "two")
        #expect(flag)
    }

    @Test("join of 2 futures yields both outputs")
    func joinTwo() throws {
        let runtime = try Runtime()
        let (a, b) = try runtime.block(on: join(ready(1.5), yields(1).map { [1, 2] }))
        #expect(a == 1.5)
        #expect(b == [1, 2])
    }

    @Test("the variadic join of 5 futures yields the tuple in argument order")
    func joinFive() throws {
        let runtime = try Runtime()
        let (a, b, c, d, e) = try runtime.guardedBlock(on: join(
            ready(1),
            yields(3).map { "b" },
            sleepFuture(for: .milliseconds(3)).map { true },
            ready(4.5),
            yields(1).map { [5] }
        ))
        #expect(a == 1)
        #expect(b == "b")
        #expect(c)
        #expect(d == 4.5)
        #expect(e == [5])
    }

    @Test("the variadic join of 4 and of 7 futures")
    func joinFourAndSeven() throws {
        let runtime = try Runtime()
        let four = try runtime.block(on: join(ready(1), ready(2), yields(1).map { 3 }, ready(4)))
        #expect([four.0, four.1, four.2, four.3] == [1, 2, 3, 4])
        let seven = try runtime.block(on: join(
            ready(1), ready("2"), yields(2).map { 3 }, ready(4), ready(5), yields(1).map { "6" }, ready(7)
        ))
        #expect(seven.0 == 1 && seven.1 == "2" && seven.2 == 3 && seven.3 == 4)
        #expect(seven.4 == 5 && seven.5 == "6" && seven.6 == 7)
    }

    @Test("a child of a join that finished is not polled again")
    func finishedChildNotRepolled() throws {
        let runtime = try Runtime()
        let fastPolls = Counter()
        let slowPolls = Counter()
        _ = try runtime.block(on: join(ready(1).counted(fastPolls), yields(4).counted(slowPolls)))
        #expect(fastPolls.value == 1)
        #expect(slowPolls.value == 5)
    }

    @Test("dropping a pending join drops every unfinished child")
    func droppedJoinDropsChildren() throws {
        let runtime = try Runtime()
        let flag = DropFlag()
        let outcome = try runtime.guardedBlock(on: select(
            either: join(ready(1), sleepFuture(for: .seconds(60)).probed(flag)),
            or: yields(2).map { "yield" }
        ).map { ($0, flag.isDropped) })
        #expect(outcome.0.right == "yield")
        #expect(outcome.1)
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("copies of a variadic join (or try-join) are independent, as copies of join of two are: the copy a select dropped drops its children while the original lives, and the original runs again")
    func variadicJoinCopies() throws {
        let runtime = try Runtime()
        let flag = DropFlag()
        let work = join(ready(1), ready(2), ready(3), sleepFuture(for: .seconds(60)).probed(flag))
        let outcome = try runtime.guardedBlock(on: select(either: work, or: yields(2).map { "yield" }))
        #expect(outcome.right == "yield")
        #expect(flag.isDropped)
        #expect(runtime.pendingTimerCount == 0, "the dropped copy's timer is still armed")
        withExtendedLifetime(work) {}

        let quick = join(ready(1), ready(2), ready(3), ready(4))
        for _ in 0..<2 {
            let (a, b, c, d) = try runtime.guardedBlock(on: quick)
            #expect([a, b, c, d] == [1, 2, 3, 4])
        }
        let tried = tryJoin(readyResult(1), readyResult(2), readyResult(3), readyResult(4))
        for _ in 0..<2 {
            let values = try runtime.guardedBlock(on: tried).get()
            #expect([values.0, values.1, values.2, values.3] == [1, 2, 3, 4])
        }
    }

    @Test("joinAll yields outputs in input order, not completion order")
    func joinAllPreservesOrder() throws {
        let runtime = try Runtime()
        let finishOrder = Box<[Int]>([])
        // 50 ms apart: at 5 ms, a loaded run under AddressSanitizer saw the
        // 5 ms sleep end before the 0 ms one's first poll (finish order
        // [1, 3, 4, 2, 0]).
        let delays = [250, 50, 150, 0, 100]
        let outputs = try runtime.guardedBlock(on: joinAll(delays.enumerated().map { index, delay in
            sleepFuture(for: .milliseconds(delay)).map { () -> Int in
                finishOrder.value.append(index)
                return delay
            }
        }))
        #expect(outputs == delays)
        #expect(finishOrder.value == [3, 1, 4, 2, 0])
    }

    @Test("joinAll of an empty list is ready at once")
    func joinAllEmpty() throws {
        var all = joinAll([Ready<Int>]())
        guard case .ready(let outputs) = pollOnce(&all) else {
            Issue.record("joinAll([]) was pending")
            return
        }
        #expect(outputs.isEmpty)
    }

    @Test("joinAll re-polls only the children that were woken")
    func joinAllPollsOnlyWokenChildren() throws {
        let runtime = try Runtime()
        let mailboxes = (0..<10).map { _ in Mailbox<Int>() }
        let all = runtime.spawn(joinAll(mailboxes.map { $0.receive() }))
        try runtime.block(on: yieldNow())
        #expect(mailboxes.map(\.polls) == Array(repeating: 1, count: 10))

        mailboxes[3].send(3)
        try runtime.block(on: yieldNow())
        #expect(mailboxes[3].polls == 2)
        #expect(mailboxes.enumerated().allSatisfy { $0.offset == 3 || $0.element.polls == 1 })

        for (index, mailbox) in mailboxes.enumerated() where index != 3 { mailbox.send(index) }
        let outputs = try runtime.block(on: all)
        #expect(try outputs.get() == Array(0..<10))
        #expect(mailboxes.allSatisfy { $0.polls == 2 })
    }
}

/// A future ready at once with `.success(value)`.
private func readyResult(_ value: Int) -> PollFn<Result<Int, WeftError>> {
    pollFn { _ in .ready(.success(value)) }
}
