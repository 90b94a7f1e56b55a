import CLibUV
import Synchronization

/// Work handed to the loop from another thread: a woken task, or a Swift
/// concurrency job for one of the loop's executors.
enum RemoteWork {
    case task(RawTask)
    /// `onTaskExecutor` tells which executor object the job was enqueued on.
    case job(UnownedJob, onTaskExecutor: Bool)
}

/// The inbox through which other threads schedule tasks and Swift jobs
/// (invariant 3): a locked list plus a `uv_async_send` that wakes the loop out of
/// its OS poll.
///
/// It outlives the runtime when tasks, wakers or executors do: after `close()`
/// foreign wakes are dropped (the task was cancelled at shutdown) and jobs go
/// to `orphans` (a job must run somewhere, or its task would hang), so nothing
/// ever touches a closed handle.
@usableFromInline
final class RemoteScheduler: Sendable {
    private struct Inbox {
        var work: [RemoteWork] = []
        /// The address of the loop's async handle (an integer, so the inbox is
        /// plainly Sendable); `nil` once the runtime shut down. Used only under
        /// the lock, so it cannot be closed under a sender.
        var asyncAddress: UInt?

        var async: UnsafeMutablePointer<uv_async_t>? {
            asyncAddress.flatMap { UnsafeMutablePointer(bitPattern: $0) }
        }
        var foreignWakes = 0
    }

    private let inbox: Mutex<Inbox>
    /// A lock-free hint that `work` is non-empty, so the loop skips the lock on
    /// most turns.
    private let hasWork = Atomic<Bool>(false)

    /// Where jobs go once the loop is closed.
    let orphans: OrphanedJobs

    init(async: UnsafeMutablePointer<uv_async_t>, loopIdentity: UInt64) {
        inbox = Mutex(Inbox(asyncAddress: UInt(bitPattern: async)))
        orphans = OrphanedJobs(loopIdentity: loopIdentity)
    }

    /// Queues `task` and wakes the loop. The task's `scheduled` bit is already set.
    func enqueue(_ task: RawTask) {
        inbox.locked { inbox in
            guard let async = inbox.async else { return }
            inbox.work.append(.task(task))
            inbox.foreignWakes += 1
            hasWork.store(true, ordering: .releasing)
            // Sent under the lock so that `close()` cannot free the handle in between.
            uv_async_send(async)
        }
    }

    /// Queues a Swift job and wakes the loop; after shutdown the job goes to the
    /// orphaned jobs instead.
    func enqueue(_ job: UnownedJob, onTaskExecutor: Bool) {
        let accepted = inbox.locked { inbox -> Bool in
            guard let async = inbox.async else { return false }
            inbox.work.append(.job(job, onTaskExecutor: onTaskExecutor))
            hasWork.store(true, ordering: .releasing)
            uv_async_send(async)
            return true
        }
        if !accepted { orphans.enqueue(job, onTaskExecutor: onTaskExecutor) }
    }

    /// Moves everything queued into `body`, in arrival order.
    func drain(_ body: (RemoteWork) -> Void) {
        guard hasWork.load(ordering: .acquiring) else { return }
        let work = inbox.locked { inbox -> [RemoteWork] in
            hasWork.store(false, ordering: .relaxed)
            defer { inbox.work.removeAll(keepingCapacity: true) }
            return inbox.work
        }
        work.forEach(body)
    }

    var isEmpty: Bool { !hasWork.load(ordering: .acquiring) }

    var foreignWakes: Int { inbox.locked { $0.foreignWakes } }

    /// Stops accepting work and returns the async handle for the caller to close.
    /// Jobs still queued are handed to the orphaned jobs.
    func close() -> UnsafeMutablePointer<uv_async_t>? {
        let (async, work) = inbox.locked { inbox in
            defer { inbox.asyncAddress = nil; inbox.work.removeAll() }
            return (inbox.async, inbox.work)
        }
        for case .job(let job, let onTaskExecutor) in work { orphans.enqueue(job, onTaskExecutor: onTaskExecutor) }
        return async
    }
}
