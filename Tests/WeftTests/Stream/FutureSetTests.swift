import Testing
import Weft

@Suite("FutureSet")
struct FutureSetTests {
    @Test("copies of one unpolled bufferUnordered, joinAll or FutureSet, polled at once, each finish: they shared the children's wake state, and one took the other's wakes")
    func copiesPolledAtOnce() throws {
        let runtime = try Runtime()
        let stream = iter([10, 20]).map { ms in sleepFuture(for: .milliseconds(ms)).map { ms } }.bufferUnordered(2)
        let streams = try runtime.guardedBlock(on: timeoutFuture(.seconds(5), join(stream.collect(), stream.collect())))
        #expect(streams.map { [$0.0, $0.1] } == .success([[10, 20], [10, 20]]), "\(streams)")

        let all = joinAll([sleepFuture(for: .milliseconds(10)).map { 1 }, sleepFuture(for: .milliseconds(15)).map { 2 }])
        let joined = try runtime.guardedBlock(on: timeoutFuture(.seconds(5), join(all, all)))
        #expect(joined.map { [$0.0, $0.1] } == .success([[1, 2], [1, 2]]), "\(joined)")

        let set = FutureSet([sleepFuture(for: .milliseconds(10)).map { 3 }])
        let sets = try runtime.guardedBlock(on: timeoutFuture(.seconds(5), join(set.collect(), set.collect())))
        #expect(sets.map { [$0.0, $0.1] } == .success([[3], [3]]), "\(sets)")
    }

    @Test("a FutureSet only re-polls the children that were woken")
    func onlyWokenChildrenArePolled() {
        let parentWakes = AtomicCounter()
        let parent = Waker { parentWakes.increment() }
        let mailboxes = (0..<10).map { _ in Mailbox<Int>() }
        var set = FutureSet(mailboxes.map { $0.receive() })
        #expect(set.count == 10)

        #expect(pollNextOnce(&set, waker: parent) == .pending)
        #expect(mailboxes.map(\.polls) == Array(repeating: 1, count: 10))

        // Polling again without any wake polls nobody.
        #expect(pollNextOnce(&set, waker: parent) == .pending)
        #expect(mailboxes.map(\.polls) == Array(repeating: 1, count: 10))

        // A spurious wake of child 5 re-polls child 5 only, and wakes the parent.
        mailboxes[5].waker!.wake()
        #expect(parentWakes.value == 1)
        #expect(pollNextOnce(&set, waker: parent) == .pending)
        #expect(mailboxes[5].polls == 2)
        #expect(mailboxes.enumerated().allSatisfy { $0.offset == 5 || $0.element.polls == 1 })

        // Completing child 3 yields its output; nobody else is polled.
        mailboxes[3].send(33)
        #expect(pollNextOnce(&set, waker: parent) == .ready(33))
        #expect(set.count == 9)
        #expect(mailboxes[3].polls == 2)
        #expect(mailboxes.enumerated().allSatisfy { [3, 5].contains($0.offset) || $0.element.polls == 1 })
    }

    @Test("repeated wakes of one child before the set is polled poll it once")
    func repeatedChildWakesCoalesce() {
        let parentWakes = AtomicCounter()
        let parent = Waker { parentWakes.increment() }
        let mailbox = Mailbox<Int>()
        var set = FutureSet<PollFn<Int>>()
        set.insert(mailbox.receive())
        #expect(pollNextOnce(&set, waker: parent) == .pending)
        for _ in 0..<50 { mailbox.waker!.wake() }
        #expect(parentWakes.value == 1)
        #expect(pollNextOnce(&set, waker: parent) == .pending)
        #expect(mailbox.polls == 2)
    }

    @Test("a poll that works through an earlier poll's backlog with a new waker, and finds it pending, registers that waker: a child woken later wakes it, not the old one")
    func backlogPolledByANewWaker() {
        let oldWakes = AtomicCounter(), newWakes = AtomicCounter()
        let first = Mailbox<Int>(), second = Mailbox<Int>()
        first.value = 1
        var set = FutureSet([first.receive(), second.receive()])
        #expect(pollNextOnce(&set, waker: Waker { oldWakes.increment() }) == .ready(1))  // the second is left in the backlog
        #expect(pollNextOnce(&set, waker: Waker { newWakes.increment() }) == .pending)
        second.send(2)
        #expect(newWakes.value == 1)
        #expect(pollNextOnce(&set, waker: Waker { newWakes.increment() }) == .ready(2))
    }

    @Test("a child woken while the set's task is already queued (its wake spent on that turn) is not lost when the next poll only works through the backlog")
    func childWokenDuringTheBacklog() {
        let wakes = AtomicCounter()
        let waker = Waker { wakes.increment() }
        let a = Mailbox<Int>(), b = Mailbox<Int>(), c = Mailbox<Int>()
        var set = FutureSet([a.receive(), b.receive(), c.receive()])
        #expect(pollNextOnce(&set, waker: waker) == .pending)
        a.send(1)
        b.waker!.wake()  // a spurious wake: the backlog will be [a, b]
        #expect(pollNextOnce(&set, waker: waker) == .ready(1))  // wakes itself for b
        c.send(3)  // its wake goes to the task already queued
        // The next poll polls b (pending), then takes c: nothing waits on a wake spent already.
        #expect(pollNextOnce(&set, waker: waker) == .ready(3))
        let before = wakes.value
        #expect(pollNextOnce(&set, waker: waker) == .pending)
        b.send(2)
        #expect(wakes.value > before)
        #expect(pollNextOnce(&set, waker: waker) == .ready(2))
    }

    // Before the fix that came with this test, the set took the wake the
    // child had just given itself and polled it again in the same poll: a
    // `yieldNow()` inside joinAll, forEachConcurrent or bufferUnordered gave
    // nothing else a turn.
    @Test("a child that wakes itself during the backlog (a yield) is polled again at the set's next poll, not within the same one")
    func yieldingChildWaitsForTheNextPoll() {
        let polls = Counter()
        let children: [PollFn<Int>] = [
            pollFn { _ in .ready(0) },
            pollFn { context in
                polls.value += 1
                if polls.value == 1 {
                    context.waker.wake()
                    return .pending
                }
                return .ready(1)
            },
        ]
        let wakes = AtomicCounter()
        let waker = Waker { wakes.increment() }
        var set = FutureSet(children)
        #expect(pollNextOnce(&set, waker: waker) == .ready(0))
        let before = wakes.value
        #expect(pollNextOnce(&set, waker: waker) == .pending)
        #expect(polls.value == 1, "the yielding child was polled again in the same poll")
        #expect(wakes.value > before, "the set did not ask to be polled again")
        #expect(pollNextOnce(&set, waker: waker) == .ready(1))
    }

    @Test("bufferUnordered taken one element per block(on:), each a task of its own: the third element's timer wakes the third task (it woke the first, finished one, and the third block(on:) was stuck)")
    func elementsTakenByTasksInTurn() throws {
        let runtime = try Runtime()
        let stream = iter([0, 0, 30]).map { ms in sleepFuture(for: .milliseconds(Int64(ms))).map { ms } }.bufferUnordered(3)
        let (first, rest1) = try runtime.block(on: stream.next())
        let (second, rest2) = try runtime.block(on: rest1.next())
        let (third, _) = try runtime.block(on: rest2.next())
        #expect([first, second, third] == [0, 0, 30])
    }

    @Test("300 children of one set waiting on one receiver, more than a waiting list evicts, leave the loop idle: their wakers are kept, none evicted (each eviction had the set poll a child again, which evicted the next, the loop never idle)")
    func manyChildrenWaitingOnOneReceiver() throws {
        let runtime = try Runtime()
        let (sender, receiver) = unboundedChannel(of: Int.self)
        let all = runtime.spawn(joinAll((0..<300).map { _ in receiver.next().map { $0.0 } }))
        try runtime.block(on: sleepFuture(for: .milliseconds(10)))  // every child polled and waiting
        let pollsBefore = runtime.statistics.polls
        try runtime.block(on: sleepFuture(for: .milliseconds(200)))
        let polls = runtime.statistics.polls - pollsBefore
        #expect(polls < 50, "\(polls) polls while nothing happened")
        for value in 0..<300 { try sender.send(value) }
        let outputs = try runtime.guardedBlock(on: all).get()
        #expect(Set(outputs.compactMap { $0 }) == Set(0..<300))
    }

    @Test("outputs come in completion order and the set ends with nil when empty")
    func completionOrderThenNil() throws {
        // On the virtual clock, each sleep made at its first poll: made before
        // the loop ran, all three could be due at their first poll on a loaded
        // machine, and come out in insertion order.
        let runtime = try Runtime(options: .deterministic(seed: 0))
        var set = FutureSet<Map<Lazy<Sleep>, Int>>()
        for delay in [20, 5, 10] { set.insert(lazy { sleepFuture(for: .milliseconds(delay)) }.map { delay }) }
        let outputs = try runtime.guardedBlock(on: set.fold([Int]()) { $0 + [$1] })
        #expect(outputs == [5, 10, 20])

        var empty = FutureSet<Ready<Int>>()
        #expect(empty.isEmpty)
        #expect(pollNextOnce(&empty) == .ready(nil))
    }

    @Test("pollNextIndexed reports the slot returned by insert")
    func indexedOutputs() {
        var set = FutureSet<Ready<String>>()
        let a = set.insert(ready("a"))
        let b = set.insert(ready("b"))
        #expect(a != b)
        var context = Context(waker: .noop)
        var seen: [Int: String] = [:]
        while case .ready(let next?) = set.pollNextIndexed(&context) { seen[next.index] = next.output }
        #expect(seen == [a: "a", b: "b"])
        #expect(set.isEmpty)
    }

    @Test("children inserted while the set is running are polled at its next poll")
    func insertWhileRunning() throws {
        let runtime = try Runtime()
        let first = Mailbox<Int>()
        let later = Mailbox<Int>()
        var set = FutureSet<PollFn<Int>>()
        set.insert(first.receive())
        #expect(pollNextOnce(&set) == .pending)
        set.insert(later.receive())
        #expect(pollNextOnce(&set) == .pending)
        #expect(later.polls == 1)
        #expect(first.polls == 1)
        later.send(2)
        first.send(1)
        let outputs = try runtime.guardedBlock(on: set.fold([Int]()) { $0 + [$1] })
        #expect(outputs == [2, 1])
    }

    @Test("dropping a FutureSet drops its running children and their timers")
    func droppingTheSet() throws {
        let runtime = try Runtime()
        let flag = DropFlag()
        var set = FutureSet<Probed<Map<Sleep, Int>>>()
        for delay in [60_000, 70_000] {
            set.insert(sleepFuture(for: .milliseconds(delay)).map { delay }.probed(flag))
        }
        let (outcome, droppedAtWin, timersAtWin) = try runtime.guardedBlock(on:
            select(either: set.next(), or: yields(2).map { "yield" })
                .map { ($0, flag.isDropped, runtime.pendingTimerCount) }
        )
        #expect(outcome.right == "yield")
        #expect(droppedAtWin)
        #expect(timersAtWin == 0)
    }
}
