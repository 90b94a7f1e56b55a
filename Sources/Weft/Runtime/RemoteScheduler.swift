import CLibUV
import Synchronization

/// The inbox through which other threads schedule tasks (invariant 3): a locked
/// list plus a `uv_async_send` that wakes the loop out of its OS poll.
///
/// It outlives the runtime when tasks or wakers do: after `close()` foreign wakes
/// are dropped, so a late wake never touches a closed handle.
@usableFromInline
final class RemoteScheduler: Sendable {
    private struct Inbox {
        var tasks: [RawTask] = []
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
    /// A lock-free hint that `tasks` is non-empty, so the loop skips the lock on
    /// most turns.
    private let hasWork = Atomic<Bool>(false)

    init(async: UnsafeMutablePointer<uv_async_t>) {
        inbox = Mutex(Inbox(asyncAddress: UInt(bitPattern: async)))
    }

    /// Queues `task` and wakes the loop. The task's `scheduled` bit is already set.
    func enqueue(_ task: RawTask) {
        inbox.withLock { inbox in
            guard let async = inbox.async else { return }
            inbox.tasks.append(task)
            inbox.foreignWakes += 1
            hasWork.store(true, ordering: .releasing)
            // Sent under the lock so that `close()` cannot free the handle in between.
            uv_async_send(async)
        }
    }

    /// Moves every queued task into `body`, in arrival order.
    func drain(_ body: (RawTask) -> Void) {
        guard hasWork.load(ordering: .acquiring) else { return }
        let tasks = inbox.withLock { inbox -> [RawTask] in
            hasWork.store(false, ordering: .relaxed)
            defer { inbox.tasks.removeAll(keepingCapacity: true) }
            return inbox.tasks
        }
        tasks.forEach(body)
    }

    var isEmpty: Bool { !hasWork.load(ordering: .acquiring) }

    var foreignWakes: Int { inbox.withLock { $0.foreignWakes } }

    /// Stops accepting wakes and returns the async handle for the caller to close.
    func close() -> UnsafeMutablePointer<uv_async_t>? {
        inbox.withLock { inbox in
            defer { inbox.asyncAddress = nil; inbox.tasks.removeAll() }
            return inbox.async
        }
    }
}
