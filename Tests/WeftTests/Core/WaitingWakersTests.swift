@testable import Weft
import Testing

/// A waker target that says it still waits: a Weft task's, as the waiting
/// list sees it.
private final class StillWaiting: FinishableWakeable, Sendable {
    var isFinished: Bool { false }
    func wake() {}
}

@Suite("WaitingWakers: what a full list keeps and lets go")
struct WaitingWakersTests {
    @Test("past the limit, a newcomer that cannot tell it finished is kept beside tasks that can, not evicted in its own place (it was woken at once, polled, registered and was evicted again, the loop never idle)")
    func newcomerIsNotEvictedInItsOwnPlace() {
        var list = WaitingWakers()
        for _ in 0..<WaitingWakers.limit {
            #expect(list.register(Waker(StillWaiting())) == nil)
        }
        let woken = AtomicCounter()
        let newcomer = Waker { _ = woken.increment() }
        let letGo = list.register(newcomer)
        letGo?.wake()
        #expect(woken.value == 0, "the newcomer was let go as it registered")
        #expect(letGo?.evicted == nil)
        // It is kept: the event wakes it.
        list.wakeAll()
        #expect(woken.value == 1)
    }

    @Test("past the limit, a newcomer takes the place of the longest-kept waker that cannot tell, which is woken")
    func newcomerEvictsTheOldestThatCannotTell() {
        var list = WaitingWakers()
        let oldestWoken = AtomicCounter()
        #expect(list.register(Waker(StillWaiting())) == nil)
        #expect(list.register(Waker { _ = oldestWoken.increment() }) == nil)
        for _ in 2..<WaitingWakers.limit {
            #expect(list.register(Waker(StillWaiting())) == nil)
        }
        let newcomerWoken = AtomicCounter()
        let letGo = list.register(Waker { _ = newcomerWoken.increment() })
        letGo?.wake()
        #expect(oldestWoken.value == 1, "the oldest waker that cannot tell was not let go")
        #expect(newcomerWoken.value == 0)
    }
}
