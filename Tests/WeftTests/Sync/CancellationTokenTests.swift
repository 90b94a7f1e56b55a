import Testing
import Weft

@Suite("CancellationToken")
struct SyncCancellationTokenTests {
    @Test("cancelling a token cancels its descendants but not its parent")
    func tree() {
        let root = CancellationToken()
        let child = root.child()
        let grandchild = child.child()
        let sibling = root.child()
        child.cancel()
        #expect(child.isCancelled)
        #expect(grandchild.isCancelled)
        #expect(!root.isCancelled)
        #expect(!sibling.isCancelled)
        root.cancel()
        #expect(sibling.isCancelled)
        #expect(root.child().isCancelled, "a child of a cancelled token starts cancelled")
    }

    @Test("cancelled() futures of a whole tree wake when the root is cancelled")
    func wakesTree() throws {
        let runtime = try Runtime()
        let root = CancellationToken()
        let leaves = (0..<3).map { _ in root.child().child() }
        let waiting = leaves.map { runtime.spawn($0.cancelledFuture()) }
        runtime.spawn(yields(2).map { root.cancel() })
        let results = try runtime.guardedBlock(on: joinAll(waiting))
        #expect(results.allSatisfy { $0.isSuccess })
    }

    @Test("a token cancelled from a foreign thread wakes the loop")
    func foreignCancel() throws {
        let runtime = try Runtime()
        let token = CancellationToken()
        let latch = FirstPollLatch()
        let thread = ForeignThread {
            latch.waitForFirstPoll()
            token.cancel()
        }
        defer { thread.join() }
        try runtime.guardedBlock(on: latch.watching(token.cancelledFuture()))
        #expect(latch.waited, "cancelled before the first poll: the foreign wake was not tested")
        let done = try runtime.guardedBlock(on: AsyncFuture { () -> Bool in
            (try? await token.cancelled()) != nil
        })
        #expect(done)
    }

    @Test("a dropped cancelled() future is removed and never woken")
    func droppedWaiter() {
        let token = CancellationToken()
        let wakes = AtomicCounter()
        var future = token.cancelledFuture()
        #expect(!pollFuture(&future, waker: Waker { wakes.increment() }).isReady)
        _ = consume future
        token.cancel()
        #expect(wakes.value == 0)
    }
}
