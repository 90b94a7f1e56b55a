/// The links a node of an ``IntrusiveList`` carries.
@usableFromInline
struct ListLinks<Node: AnyObject> {
    @usableFromInline var next: Unmanaged<Node>?
    @usableFromInline var previous: Unmanaged<Node>?
    /// Set while the node is in a list.
    @usableFromInline var isLinked = false

    @inlinable
    init() {}
}

/// A node of an ``IntrusiveList``: it carries its own links.
@usableFromInline
protocol IntrusiveListNode: AnyObject {
    var links: ListLinks<Self> { get set }
}

/// A doubly-linked FIFO threaded through its nodes: O(1) append and removal
/// from anywhere (a dropped future takes its node out wherever it is), and no
/// allocation beyond the nodes. The one linked list of objects: `Notify`'s
/// waiters, and (through ``WaitList``) the other primitives' waiters (the
/// timer wheel links its slab's nodes by index).
///
/// The links are unretained: the list does not keep its nodes alive. Either
/// whoever owns a node removes it before the node dies (a notify waiter's
/// deinit does, under whatever guards the list), or the list
/// is wrapped by ``WaitList``, which holds a reference to each node it links.
/// Not thread-safe: its owner's lock or thread guards it.
@usableFromInline
struct IntrusiveList<Node: IntrusiveListNode> {
    @usableFromInline var first: Unmanaged<Node>?
    @usableFromInline var last: Unmanaged<Node>?
    @usableFromInline var count = 0

    @inlinable
    init() {}

    @inlinable
    var isEmpty: Bool { first == nil }

    /// Links `node`, which must not be in a list, at the end.
    @inlinable
    mutating func append(_ node: Node) {
        precondition(!node.links.isLinked, "a node is in one list at a time")
        let link = Unmanaged.passUnretained(node)
        node.links.isLinked = true
        node.links.next = nil
        node.links.previous = last
        if let last { last._withUnsafeGuaranteedRef { $0.links.next = link } } else { first = link }
        last = link
        count += 1
    }

    /// Unlinks `node` if it is linked (it must then be in this list).
    @inlinable
    mutating func remove(_ node: Node) {
        guard node.links.isLinked else { return }
        let next = node.links.next
        let previous = node.links.previous
        if let previous { previous._withUnsafeGuaranteedRef { $0.links.next = next } } else { first = next }
        if let next { next._withUnsafeGuaranteedRef { $0.links.previous = previous } } else { last = previous }
        node.links = ListLinks()
        count -= 1
    }

    /// Unlinks the first node and returns it (unretained, as the list held it).
    @inlinable
    mutating func popFirst() -> Unmanaged<Node>? {
        guard let node = first else { return nil }
        node._withUnsafeGuaranteedRef { remove($0) }
        return node
    }
}

/// One waiter in a ``WaitList``: what it waits for, and its task's waker.
///
/// Touched only under the lock of the primitive that owns the list, so two
/// accesses never overlap and the runtime's exclusivity checks (a large part
/// of a hand-off's cost) are turned off.
@usableFromInline
final class WaitNode<Payload>: IntrusiveListNode {
    @exclusivity(unchecked) @usableFromInline var payload: Payload
    @exclusivity(unchecked) @usableFromInline var waker: Waker?
    @exclusivity(unchecked) @usableFromInline var links = ListLinks<WaitNode>()

    @inlinable
    init(_ payload: Payload) {
        self.payload = payload
    }

    @inlinable
    var isLinked: Bool { links.isLinked }
}

/// An ``IntrusiveList`` of waiters that holds a reference to each node it
/// links, so a node stays alive while queued whoever else drops it; the owner
/// of a waiting future removes its node (under the primitive's lock) when the
/// future is dropped.
@usableFromInline
struct WaitList<Payload> {
    @usableFromInline var list = IntrusiveList<WaitNode<Payload>>()

    @inlinable
    init() {}

    @inlinable
    var isEmpty: Bool { list.isEmpty }

    @inlinable
    var count: Int { list.count }

    @inlinable
    var first: WaitNode<Payload>? { list.first?.takeUnretainedValue() }

    @inlinable
    mutating func append(_ node: WaitNode<Payload>) {
        list.append(node)
        _ = Unmanaged.passRetained(node)
    }

    @inlinable
    mutating func popFirst() -> WaitNode<Payload>? {
        list.popFirst()?.takeRetainedValue()
    }

    /// Unlinks `node` if it is in this list.
    @inlinable
    mutating func remove(_ node: WaitNode<Payload>) {
        guard node.isLinked else { return }
        list.remove(node)
        Unmanaged.passUnretained(node).release()
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
