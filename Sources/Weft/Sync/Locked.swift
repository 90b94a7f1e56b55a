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

extension Optional where Wrapped == Waker {
    /// Stores `waker` unless the stored one already wakes the same task.
    @inlinable @inline(__always)
    mutating func register(_ waker: Waker) {
        if let current = self, current.willWake(waker) { return }
        self = waker
    }
}

/// One waiter in a ``WaitList``: what it waits for, and its task's waker.
///
/// Touched only under the lock of the primitive that owns the list, so two
/// accesses never overlap and the runtime's exclusivity checks (a large part
/// of a hand-off's cost) are turned off.
@usableFromInline
final class WaitNode<Payload> {
    @exclusivity(unchecked) @usableFromInline var payload: Payload
    @exclusivity(unchecked) @usableFromInline var waker: Waker?
    /// Set while the node is in a list.
    @exclusivity(unchecked) @usableFromInline var isLinked = false
    @exclusivity(unchecked) @usableFromInline var next: WaitNode?
    /// Unowned: the node before this one holds it through `next`.
    @exclusivity(unchecked) @usableFromInline unowned(unsafe) var previous: WaitNode?

    @inlinable
    init(_ payload: Payload) {
        self.payload = payload
    }
}

/// A FIFO of waiting nodes with O(1) removal from the middle, so a dropped
/// future can take its node out wherever it is.
@usableFromInline
struct WaitList<Payload> {
    @usableFromInline var first: WaitNode<Payload>?
    @usableFromInline var last: WaitNode<Payload>?
    @usableFromInline var count = 0

    @inlinable
    init() {}

    @inlinable
    var isEmpty: Bool { first == nil }

    @inlinable
    mutating func append(_ node: WaitNode<Payload>) {
        precondition(!node.isLinked, "a WaitNode is in one list at a time")
        node.isLinked = true
        node.previous = last
        if let last { last.next = node } else { first = node }
        last = node
        count += 1
    }

    @inlinable
    mutating func popFirst() -> WaitNode<Payload>? {
        guard let node = first else { return nil }
        remove(node)
        return node
    }

    /// Unlinks `node`, which must be in this list.
    @inlinable
    mutating func remove(_ node: WaitNode<Payload>) {
        guard node.isLinked else { return }
        let next = node.next
        if let previous = node.previous { previous.next = next } else { first = next }
        if let next { next.previous = node.previous } else { last = node.previous }
        node.next = nil
        node.previous = nil
        node.isLinked = false
        count -= 1
    }

    /// Unlinks every node, in order.
    @inlinable
    mutating func removeAll() -> [WaitNode<Payload>] {
        var nodes: [WaitNode<Payload>] = []
        nodes.reserveCapacity(count)
        while let node = popFirst() { nodes.append(node) }
        return nodes
    }
}

/// Wakes every waker in `wakers`; for use after a lock is released.
@inlinable @inline(__always)
func wakeAll(_ wakers: [Waker]) {
    for waker in wakers { waker.wake() }
}
