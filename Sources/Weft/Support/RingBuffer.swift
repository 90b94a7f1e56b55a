import CLibUV
#if canImport(Glibc)
#endif

/// A growable FIFO ring buffer: O(1) push and pop without `Array`'s shifting or
/// copy-on-write checks. The one ring buffer: the ready queue, the accepted
/// connections of a listener, a channel's values. Confined to one thread at a
/// time (the loop's, or the holder of a channel's lock). Exclusivity checks are
/// off: every method is non-reentrant and touches the fields only for its own
/// duration. Inlinable, so that a channel's operations specialise in the
/// caller's module.
///
/// It grows with `realloc`, which moves a large buffer by remapping its pages
/// instead of copying and faulting in a second one (a million queued tasks are
/// 8 MB). Swift values may be moved bitwise, which is what `realloc` does.
@usableFromInline
final class RingBuffer<Element> {
    @exclusivity(unchecked) @usableFromInline var storage: UnsafeMutablePointer<Element>
    @exclusivity(unchecked) @usableFromInline var capacity: Int
    @exclusivity(unchecked) @usableFromInline var head = 0
    @exclusivity(unchecked) @usableFromInline private(set) var count = 0

    @inlinable
    init(capacity: Int = 256) {
        self.capacity = max(capacity, 1)
        self.storage = reallocate(nil, capacity: self.capacity)
    }

    deinit {
        while popFirst() != nil {}
        free(storage)
    }

    @inlinable
    var isEmpty: Bool { count == 0 }

    @inlinable
    func append(_ element: Element) {
        if count == capacity { grow() }
        var tail = head + count
        if tail >= capacity { tail -= capacity }
        (storage + tail).initialize(to: element)
        count += 1
    }

    @inlinable
    func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let element = (storage + head).move()
        head += 1
        if head == capacity { head = 0 }
        count -= 1
        return element
    }

    /// Removes the element `offset` places from the front, filling its place
    /// with the front element (order is not kept: for a randomised scheduler).
    func remove(at offset: Int) -> Element {
        precondition(offset >= 0 && offset < count, "ring buffer offset out of range")
        var index = head + offset
        if index >= capacity { index -= capacity }
        if index != head { swap(&storage[index], &storage[head]) }
        return popFirst()!
    }

    /// Whether the storage holds more than 64 times `initial` elements: what
    /// ``shrinkIfEmpty(to:)`` gives back once the buffer is empty.
    func outgrew(_ initial: Int) -> Bool { capacity > initial &* 64 }

    /// Gives back what a burst made the storage grow to, once the buffer is
    /// empty again: down to `initial` elements, when it holds more than 64
    /// times that (below, a buffer filled and drained over and over would
    /// reallocate each time). The memory stayed at its peak for the buffer's
    /// life: a channel drained after a burst of a million values kept them all.
    func shrinkIfEmpty(to initial: Int) {
        guard count == 0, outgrew(initial) else { return }
        capacity = max(initial, 1)
        head = 0
        storage = reallocate(storage, capacity: capacity)
    }

    /// Doubles the capacity of a full buffer; the part that wrapped around to
    /// the start moves to just after the old end.
    @usableFromInline
    func grow() {
        let oldCapacity = capacity
        capacity *= 2
        storage = reallocate(storage, capacity: capacity)
        (storage + oldCapacity).moveInitialize(from: storage, count: head)
    }
}

/// `realloc` of `pointer` (nil: a new buffer) to `capacity` elements; traps when
/// memory is exhausted, as Swift's own allocations do.
@usableFromInline
func reallocate<Element>(_ pointer: UnsafeMutablePointer<Element>?, capacity: Int) -> UnsafeMutablePointer<Element> {
    precondition(MemoryLayout<Element>.alignment <= 16, "malloc aligns to 16 bytes")
    let (bytes, overflow) = capacity.multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
    guard !overflow, let raw = realloc(pointer, max(bytes, 1)) else {
        fatalError("out of memory growing a buffer to \(capacity) elements")
    }
    return raw.assumingMemoryBound(to: Element.self)
}
