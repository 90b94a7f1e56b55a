/// A lock for tasks, protecting a value: its guard may be held across
/// suspension points (unlike `Synchronization.Mutex`, which must never be held
/// across an `await`). Waiters get the lock first come, first served. Usable
/// from any thread.
///
/// ```swift
/// let counter = AsyncLock(0)
/// let held = try await counter.lock()
/// held.value += 1
/// try await sleep(for: .milliseconds(1))   // still held
/// held.unlock()
/// ```
///
/// **Cancellation:** cancel-safe: dropping a pending ``lockFuture()`` future (or
/// cancelling the `async` `lock()`) leaves the queue; if the lock had already
/// been handed to it, it passes to the next waiter.
public final class AsyncLock<Value> {
    private let semaphore = AsyncSemaphore(permits: 1)
    fileprivate var protected: Value

    /// A lock protecting `value`.
    public init(_ value: Value) {
        protected = value
    }

    /// A future of the guard; ready once every earlier waiter is done.
    public func lockFuture() -> AsyncLockAcquire<Value> {
        AsyncLockAcquire(lock: self, acquire: semaphore.acquireFuture())
    }

    /// The guard, if the lock is free now.
    public func tryLock() -> AsyncLockGuard<Value>? {
        semaphore.tryAcquire().map { AsyncLockGuard(lock: self, permit: $0) }
    }
}

/// Sendable when `Value` is: `protected` is touched only through an
/// `AsyncLockGuard`, at most one guard exists at a time (it holds the
/// semaphore's single permit), and the semaphore's lock orders one guard's
/// accesses before the next guard's. The value itself may then cross threads,
/// which is why `Value` must be `Sendable`.
extension AsyncLock: @unchecked Sendable where Value: Sendable {}

/// Exclusive access to an ``AsyncLock``'s value until ``unlock()`` (or
/// deinitialization). Keep it in the task that locked.
///
/// Swift may end an object's lifetime right after its last use — which can be
/// before a later `await` — so call ``unlock()`` explicitly where the critical
/// section ends.
public final class AsyncLockGuard<Value> {
    private let lock: AsyncLock<Value>
    private let permit: SemaphorePermit
    private var isUnlocked = false

    fileprivate init(lock: AsyncLock<Value>, permit: SemaphorePermit) {
        self.lock = lock
        self.permit = permit
    }

    /// The protected value. Only while locked.
    public var value: Value {
        get {
            precondition(!isUnlocked, "AsyncLockGuard used after unlock()")
            return lock.protected
        }
        _modify {
            precondition(!isUnlocked, "AsyncLockGuard used after unlock()")
            yield &lock.protected
        }
    }

    /// Releases the lock. Idempotent.
    public func unlock() {
        isUnlocked = true
        permit.release()
    }

    deinit { permit.release() }
}

/// The future returned by ``AsyncLock/lockFuture()``.
///
/// Poll it from one task: a copy made after its first poll shares its place
/// in the queue, so one copy gets the lock and the other waits for ever.
/// Make a `lockFuture()` per task instead.
///
/// **Cancellation:** see ``AsyncLock``.
public struct AsyncLockAcquire<Value>: Future {
    let lock: AsyncLock<Value>
    var acquire: SemaphoreAcquire

    public mutating func poll(_ context: inout Context) -> Poll<AsyncLockGuard<Value>> {
        acquire.poll(&context).map { AsyncLockGuard(lock: lock, permit: $0) }
    }
}
