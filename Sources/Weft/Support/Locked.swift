import CWeftSupport
import Synchronization

/// State guarded by a `Synchronization.Mutex`, for the sync primitives' shared
/// cores. Unlike `Mutex<State>` it lets the body move non-`Sendable` values
/// (waiting nodes, a channel's elements) in and out of the state.
///
/// `@unchecked Sendable` is sound because `state` is read and written only
/// inside `withLock`, while `lock` is held, so no two threads ever touch it at
/// once, and the mutex orders each holder's writes before the next holder's
/// reads. Values move between threads through it only when the primitive's
/// public handles are `Sendable`, which each primitive requires of its values.
@usableFromInline
final class Locked<State>: @unchecked Sendable {
    @usableFromInline let lock = Mutex<Void>(())
    @exclusivity(unchecked) @usableFromInline var state: State

    @inlinable
    init(_ state: State) {
        self.state = state
    }

    /// Runs `body` with exclusive access to the state. Never wake a waker in
    /// `body`: return it and wake it after the lock is released.
    @inlinable @inline(__always)
    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        try lock.withLock { _ in
            // Announced to ThreadSanitizer: see `Mutex.locked`.
            let address = UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
            weft_tsan_acquire(address)
            defer { weft_tsan_release(address) }
            return try body(&self.state)
        }
    }
}

/// Wakes every waker in `wakers`; for use after a lock is released.
@inlinable @inline(__always)
func wakeAll(_ wakers: [Waker]) {
    for waker in wakers { waker.wake() }
}
