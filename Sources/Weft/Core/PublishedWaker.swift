import Synchronization

/// Publishes `waker` in `slot` for another thread, guarded by the `published`
/// bit of `state` (the protocol of Tokio's task join and oneshot): returns true,
/// without registering, once any bit of `done` is set.
///
/// The protocol: the registering side writes `slot` only while `published` is
/// clear, and sets it (release) after writing; the other side first sets a
/// `done` bit, and reads `slot` (never writes it) only if the previous state had
/// `published` set. So the two never touch `slot` at the same time, and a
/// registration that races `done` sees it in a failed exchange and returns true
/// instead of leaving a waker nobody will wake.
@inlinable @inline(__always)
func publishWaker(
    _ waker: Waker, in slot: inout Waker?, state: borrowing Atomic<UInt32>,
    published: UInt32, done: UInt32
) -> Bool {
    var current = state.load(ordering: .acquiring)
    if current & done != 0 { return true }
    if current & published != 0 {
        // Published: the other side may read it, so compare, never write.
        if let stored = slot, stored.willWake(waker) { return false }
        // Take the slot back before replacing the waker.
        while true {
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: current & ~published, ordering: .acquiringAndReleasing)
            if exchanged { current &= ~published; break }
            if original & done != 0 { return true }
            current = original
        }
    }
    slot = waker
    while true {
        let (exchanged, original) = state.compareExchange(
            expected: current, desired: current | published, ordering: .acquiringAndReleasing)
        if exchanged { return false }
        if original & done != 0 { return true }
        current = original
    }
}
