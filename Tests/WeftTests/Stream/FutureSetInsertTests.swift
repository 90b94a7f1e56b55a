import Testing
import Weft

@Suite("FutureSet: inserting between polls")
struct FutureSetInsertTests {
    @Test("the first insert after a pending poll wakes the polling task once; the inserted children are polled at the next poll")
    func insertWakesOnce() {
        let wakes = AtomicCounter()
        let waker = Waker { wakes.increment() }
        var set = FutureSet<PollFn<Int>>()
        let polls = Counter()
        set.insert(counted(0, after: 1_000_000, polls: polls))
        #expect(pollNextOnce(&set, waker: waker) == .pending)
        let wakesBefore = wakes.value
        for value in 1...3 { set.insert(counted(value, polls: polls)) }
        #expect(wakes.value == wakesBefore + 1, "\(wakes.value - wakesBefore) wakes for three inserts")
        var outputs: [Int] = []
        while case .ready(let output?) = pollNextOnce(&set, waker: waker) { outputs.append(output) }
        #expect(outputs == [1, 2, 3])
    }

    @Test("a child inserted while the woken backlog is being worked through is polled before the set returns pending")
    func insertDuringBacklog() {
        var set = FutureSet<Ready<Int>>()
        set.insert(ready(1))
        set.insert(ready(2))
        #expect(pollNextOnce(&set) == .ready(1))
        set.insert(ready(3))  // the backlog still holds child 2
        #expect(pollNextOnce(&set) == .ready(2))
        #expect(pollNextOnce(&set) == .ready(3))
        #expect(pollNextOnce(&set) == .ready(nil))
    }

    @Test("two wakes of a pending child between polls poll it once more, not twice")
    func twoWakesOnePoll() {
        let polls = Counter()
        var captured: Waker?
        var set = FutureSet<PollFn<Int>>()
        set.insert(pollFn { context in
            polls.value += 1
            if polls.value == 1 {
                captured = context.waker
                return .pending
            }
            return .ready(polls.value)
        })
        #expect(pollNextOnce(&set) == .pending)
        captured?.wake()
        captured?.wake()
        #expect(pollNextOnce(&set) == .ready(2))
        #expect(polls.value == 2)
    }
}
