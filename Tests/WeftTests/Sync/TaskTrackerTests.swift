import Testing
import Weft

@Suite("TaskTracker")
struct TaskTrackerTests {
    @Test("wait() is ready only once the tracker is closed and every tracked future has finished")
    func waitsForCloseAndZero() throws {
        let runtime = try Runtime()
        let tracker = TaskTracker()
        let mailbox = Mailbox<Int>()
        let handle = runtime.spawn(tracker.track(mailbox.receive()))
        #expect(tracker.liveCount == 1)

        var waiting = tracker.waitFuture()
        let woken = AtomicCounter()
        let waker = Waker { woken.increment() }
        #expect(!pollFuture(&waiting, waker: waker).isReady, "open, one live")
        tracker.close()
        #expect(!pollFuture(&waiting, waker: waker).isReady, "closed, one live")
        mailbox.send(7)
        #expect(try runtime.guardedBlock(on: handle).get() == 7)
        #expect(tracker.liveCount == 0)
        #expect(woken.value >= 1, "the last release woke the waiter")
        #expect(pollFuture(&waiting).isReady)
    }

    @Test("the documented difference from Tokio's wait: a token taken after the last one went, before the waiter looks again, keeps wait() pending until that token goes too")
    func tokenTakenBeforeTheWaiterLooksAgain() {
        let tracker = TaskTracker()
        let first = tracker.token()
        tracker.close()
        var waiting = tracker.waitFuture()
        let woken = AtomicCounter()
        let waker = Waker { woken.increment() }
        #expect(!pollFuture(&waiting, waker: waker).isReady, "closed, one live")
        first.release()
        #expect(woken.value == 1, "the last release woke the waiter")
        let second = tracker.token()  // before the waiter is polled again
        // Tokio's wait() would be ready here (it was empty once); Weft's looks
        // when polled and sees one live piece of work.
        #expect(!pollFuture(&waiting, waker: waker).isReady, "never seen empty: waits for the new token too")
        second.release()
        #expect(woken.value == 2, "the new last release woke the waiter again")
        #expect(pollFuture(&waiting, waker: waker).isReady)
    }

    @Test("a token counts once however it goes (release() twice, then dropped); one dropped unreleased releases; tokens keep their tracker alive")
    func tokenReleasesOnce() {
        weak var weakTracker: TaskTracker?
        var token: TaskTrackerToken?
        var other: TaskTrackerToken?
        do {
            let tracker = TaskTracker()
            weakTracker = tracker
            token = tracker.token()
            other = tracker.token()
            _ = tracker.token()  // dropped at once
            #expect(tracker.liveCount == 2)
        }
        #expect(weakTracker != nil, "the tokens keep their tracker")
        token?.release()
        token?.release()
        #expect(weakTracker?.liveCount == 1)
        token = nil
        #expect(weakTracker?.liveCount == 1 && other != nil, "dropping a released token releases nothing more")
        other = nil
        #expect(weakTracker == nil, "the last token let its tracker go")
    }

    @Test("an open tracker with nothing live is not done; closing it makes wait() ready")
    func emptyTracker() {
        let tracker = TaskTracker()
        var waiting = tracker.waitFuture()
        #expect(!pollFuture(&waiting).isReady)
        tracker.close()
        #expect(tracker.isClosed)
        #expect(pollFuture(&waiting).isReady)
    }

    // Before the fix that came with this test, the token went only with the
    // future: kept after it completed, it counted as live, and wait() waited.
    @Test("a tracked future stops counting when it completes, though the caller keeps it, as documented")
    func completedFutureReleases() throws {
        let tracker = TaskTracker()
        var tracked = tracker.track(ready(1))
        tracker.close()
        guard case .ready(1) = tracked.pollOnce() else {
            Issue.record("a ready future's poll was not ready")
            return
        }
        #expect(tracker.liveCount == 0)
        var wait = tracker.waitFuture()
        #expect(wait.pollOnce().isReady)
        withExtendedLifetime(tracked) {}
    }

    @Test("a tracked future that is dropped unfinished is released too")
    func droppedFutureReleases() throws {
        let runtime = try Runtime()
        let tracker = TaskTracker()
        let handle = runtime.spawn(tracker.track(pending(Void.self)))
        tracker.close()
        try runtime.guardedBlock(on: yields(1))
        #expect(tracker.liveCount == 1)
        handle.abort()
        try runtime.guardedBlock(on: tracker.waitFuture())
        #expect(tracker.liveCount == 0)
    }

    @Test("a tracked async closure counts from tracking until it has run, and wait() works from async code")
    func asyncClosures() throws {
        let runtime = try Runtime()
        let tracker = TaskTracker()
        let work = tracker.track { () async throws -> Int in 42 }
        #expect(tracker.liveCount == 1, "counted from the moment it is tracked")
        tracker.close()
        let answer = try runtime.guardedBlock(on: AsyncFuture { () -> Int? in
            let answer = try? await work()
            try? await tracker.wait()
            return answer
        })
        #expect(answer == 42)
        #expect(tracker.liveCount == 0)
    }
}
