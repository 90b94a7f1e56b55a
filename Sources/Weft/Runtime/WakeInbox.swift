import CLibUV
import Synchronization

/// Work handed to the loop from another thread: a woken task, or a job.
enum InboxItem {
    case task(RawTask)
    case job(QueuedJob)
}

/// The loop's inbox: how other threads wake its tasks and hand it jobs. A
/// locked list plus a `uv_async_send` that wakes the loop out of its OS poll;
/// the loop drains it every turn. A wake from the loop thread itself skips it
/// (a plain enqueue on the ready queue).
///
/// It outlives the loop when tasks, wakers or executors do: after `close()`
/// foreign wakes are dropped (the task was cancelled at shutdown) and jobs are
/// refused (their sender calls ``LoopJob/loopClosed()``), so nothing ever
/// touches a closed handle.
@usableFromInline
final class WakeInbox: Sendable {
    private struct Items {
        var items: [InboxItem] = []
        /// The address of the loop's async handle (an integer, so the list is
        /// plainly Sendable); `nil` once the loop shut down. Used only under
        /// the lock, so it cannot be closed under a sender.
        var asyncAddress: UInt?

        var async: UnsafeMutablePointer<uv_async_t>? {
            asyncAddress.flatMap { UnsafeMutablePointer(bitPattern: $0) }
        }
        var foreignWakes = 0
    }

    private let inbox: Mutex<Items>
    /// A lock-free hint that `items` is non-empty, so the loop skips the lock
    /// on most turns.
    private let hasItems = Atomic<Bool>(false)

    init(async: UnsafeMutablePointer<uv_async_t>) {
        inbox = Mutex(Items(asyncAddress: UInt(bitPattern: async)))
    }

    /// Queues `task` and wakes the loop. The task's `scheduled` bit is already set.
    func enqueue(_ task: RawTask) {
        inbox.locked { inbox in
            guard let async = inbox.async else { return }
            inbox.items.append(.task(task))
            inbox.foreignWakes += 1
            hasItems.store(true, ordering: .releasing)
            // Sent under the lock so that `close()` cannot free the handle in between.
            uv_async_send(async)
        }
    }

    /// Queues `job` and wakes the loop; false, without queueing it, once the
    /// loop shut down.
    func enqueue(_ job: QueuedJob) -> Bool {
        inbox.locked { inbox -> Bool in
            guard let async = inbox.async else { return false }
            inbox.items.append(.job(job))
            hasItems.store(true, ordering: .releasing)
            uv_async_send(async)
            return true
        }
    }

    /// Moves everything queued into `body`, in arrival order.
    ///
    /// `spare` is the loop's second list, empty between drains: the queued
    /// items are swapped into it under the lock rather than copied out, so a
    /// drain allocates nothing (a copy shares the buffer, and emptying the
    /// queue keeping its capacity then allocated a new one every time).
    func drain(using spare: inout [InboxItem], _ body: (InboxItem) -> Void) {
        guard hasItems.load(ordering: .acquiring) else { return }
        inbox.locked { inbox in
            hasItems.store(false, ordering: .relaxed)
            swap(&inbox.items, &spare)
        }
        spare.forEach(body)
        spare.removeAll(keepingCapacity: true)
    }

    var isEmpty: Bool { !hasItems.load(ordering: .acquiring) }

    /// Gives back what a burst of wakes from other threads made the two lists
    /// grow to, once they are mostly empty: the queue's and `spare`'s (the
    /// loop's, empty between drains), which a drain swaps, so either may hold
    /// the big one.
    func releaseIdleMemory(spare: inout [InboxItem]) {
        spare.shrinkIfSparse(keeping: Self.keptCapacity)
        inbox.locked { $0.items.shrinkIfSparse(keeping: Self.keptCapacity) }
    }

    /// The capacity past which an idle loop frees a list: more than a busy
    /// loop's turn usually drains, so a steady load keeps its lists.
    static var keptCapacity: Int { 1024 }

    /// The queue's capacity and `spare`'s, for tests.
    func capacities(spare: [InboxItem]) -> (queue: Int, spare: Int) {
        (inbox.locked { $0.items.capacity }, spare.capacity)
    }

    var foreignWakes: Int { inbox.locked { $0.foreignWakes } }

    /// Stops accepting work and returns the async handle for the caller to
    /// close, and the jobs still queued, for the caller to tell that the loop
    /// closed (``QueuedJob/loopClosed(orphanage:)``).
    func close() -> (async: UnsafeMutablePointer<uv_async_t>?, jobs: [QueuedJob]) {
        let (async, items) = inbox.locked { inbox in
            defer { inbox.asyncAddress = nil; inbox.items.removeAll() }
            return (inbox.async, inbox.items)
        }
        return (async, items.compactMap { if case .job(let job) = $0 { job } else { nil } })
    }
}
