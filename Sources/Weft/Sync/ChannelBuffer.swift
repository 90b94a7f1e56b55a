/// A growable FIFO ring of values: a channel's buffer. Touched only under the
/// owning channel's lock. Public-inlinable (unlike the runtime's `RingBuffer`)
/// so that channel operations specialize in the caller's module.
@usableFromInline
struct ChannelBuffer<Element> {
    @usableFromInline var storage: ContiguousArray<Element?>
    @usableFromInline var head = 0
    @usableFromInline var count = 0

    @inlinable
    init(capacity: Int) {
        storage = ContiguousArray(repeating: nil, count: max(capacity, 1))
    }

    @inlinable
    var isEmpty: Bool { count == 0 }

    @inlinable
    mutating func append(_ element: Element) {
        if count == storage.count { grow() }
        var tail = head + count
        if tail >= storage.count { tail -= storage.count }
        storage[tail] = element
        count += 1
    }

    @inlinable
    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head].take()
        head += 1
        if head == storage.count { head = 0 }
        count -= 1
        return element
    }

    @usableFromInline
    mutating func grow() {
        var larger = ContiguousArray<Element?>(repeating: nil, count: storage.count * 2)
        for offset in 0..<count {
            var index = head + offset
            if index >= storage.count { index -= storage.count }
            larger[offset] = storage[index].take()
        }
        storage = larger
        head = 0
    }
}
