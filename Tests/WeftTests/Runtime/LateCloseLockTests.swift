import Foundation
import Synchronization
import Testing
@testable import Weft

@Suite("A shut-down loop's handle list, walked from several threads")
struct LateCloseLockTests {
    // Before the fix that came with this test, the count walked libuv's
    // handle list at once, while the late close held it: uv_walk moves the
    // list aside and puts each handle back, so two walks at once could
    // corrupt it.
    @Test("after the shutdown, openHandleCount and activeRequestCount wait for a late close running on another thread")
    func countsWaitForALateClose() throws {
        let runtime = try Runtime()
        try runtime.shutdown()
        nonisolated(unsafe) let loop = runtime.loop
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let closer = ForeignThread { loop.runLateClose { entered.signal(); release.wait() } }
        entered.wait()
        let counted = Atomic<Int>(0)
        let reader = ForeignThread {
            _ = loop.openHandleCount
            counted.add(1, ordering: .releasing)
            _ = loop.activeRequestCount
            counted.add(1, ordering: .releasing)
        }
        usleep(100_000)
        #expect(counted.load(ordering: .acquiring) == 0, "a count walked the loop while a late close held it")
        release.signal()
        closer.join()
        reader.join()
        #expect(counted.load(ordering: .acquiring) == 2)
        #expect(runtime.openHandleCount == 0)
    }
}
