/// A growable FIFO ring buffer: O(1) push and pop without `Array`'s shifting or
/// copy-on-write checks. Confined to one thread; used for the ready queue.
/// Exclusivity checks are off: every method is non-reentrant and touches the
/// fields only for its own duration.
final class RingBuffer<Element> {
    @exclusivity(unchecked) private var storage: UnsafeMutablePointer<Element>
    @exclusivity(unchecked) private var capacity: Int
    @exclusivity(unchecked) private var head = 0
    @exclusivity(unchecked) private(set) var count = 0

    init(capacity: Int = 256) {
        self.capacity = max(capacity, 1)
        self.storage = .allocate(capacity: self.capacity)
    }

    deinit {
        while popFirst() != nil {}
        storage.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    func append(_ element: Element) {
        if count == capacity { grow() }
        var tail = head + count
        if tail >= capacity { tail -= capacity }
        (storage + tail).initialize(to: element)
        count += 1
    }

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

    private func grow() {
        let newCapacity = capacity * 2
        let newStorage = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        let firstPart = min(count, capacity - head)
        (newStorage).moveInitialize(from: storage + head, count: firstPart)
        (newStorage + firstPart).moveInitialize(from: storage, count: count - firstPart)
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
        head = 0
    }
}
