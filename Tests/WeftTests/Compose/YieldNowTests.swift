import Testing
import Weft

@Suite("yieldNow")
struct YieldNowTests {
    @Test("yieldNow lets another ready task run before the yielding task continues")
    func yieldLetsOthersRun() throws {
        let runtime = try Runtime()
        let otherRan = Box(false)
        let sawOther = try runtime.block(on: ready(()).then { _ -> YieldNow in
            spawn(ready(()).map { otherRan.value = true })
            return yieldNow()
        }.map { otherRan.value })
        #expect(sawOther)
    }

    @Test("without yieldNow the spawned task has not run yet")
    func withoutYieldOthersWait() throws {
        let runtime = try Runtime()
        let otherRan = Box(false)
        let sawOther = try runtime.block(on: ready(()).map { _ -> Bool in
            spawn(ready(()).map { otherRan.value = true })
            return otherRan.value
        })
        #expect(!sawOther)
    }

    @Test("yieldNow completes on its second poll")
    func yieldCompletesOnSecondPoll() {
        let wakes = AtomicCounter()
        let waker = Waker { wakes.increment() }
        var future = yieldNow()
        #expect(!pollOnce(&future, waker: waker).isReady)
        #expect(wakes.value == 1)
        #expect(pollOnce(&future, waker: waker).isReady)
        #expect(wakes.value == 1)
    }
}
