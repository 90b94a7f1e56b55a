import Testing
import Weft

@Suite("FutureSet")
struct FutureSetTests {
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

    @Test("outputs come in completion order and the set ends with nil when empty")
    func completionOrderThenNil() throws {
        let runtime = try Runtime()
        var set = FutureSet<Map<Sleep, Int>>()
        for delay in [20, 5, 10] { set.insert(sleepFuture(for: .milliseconds(delay)).map { delay }) }
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
