// Arrays, dictionaries and sets never give back what they grew to: removing
// elements keeps the capacity. A structure that lives long and that a burst
// fills (100,000 connections, then a few) would keep the burst's memory for
// good, still allocated, which no heap trim can return. These rebuild it at
// the size of what is left once most of it is gone: at most an eighth used,
// past `kept` slots (1,024 unless told), so a structure that shrinks must
// lose most of what it held again before the next rebuild (amortised O(1)
// per removal). An empty one past `kept` slots is simply freed.

/// Whether `count` elements use at most an eighth of `capacity` slots, past `kept`.
private func isSparse(count: Int, capacity: Int, kept: Int) -> Bool {
    capacity > kept && count <= capacity / 8
}

extension Array {
    /// Whether ``shrinkIfSparse(keeping:)`` would rebuild it.
    func isSparse(keeping kept: Int = 1024) -> Bool {
        Weft.isSparse(count: count, capacity: capacity, kept: kept)
    }

    /// Moves the elements, in order, into storage for twice their count once
    /// the array is mostly empty (see above).
    mutating func shrinkIfSparse(keeping kept: Int = 1024) {
        guard isSparse(keeping: kept) else { return }
        var shrunk: [Element] = []
        shrunk.reserveCapacity(count * 2)
        shrunk.append(contentsOf: self)
        self = shrunk
    }
}

extension Dictionary {
    /// Rebuilds the dictionary in storage for twice its count once it is
    /// mostly empty (see above).
    mutating func shrinkIfSparse() {
        guard Weft.isSparse(count: count, capacity: capacity, kept: 1024) else { return }
        var shrunk = Self(minimumCapacity: count * 2)
        for (key, value) in self { shrunk[key] = value }
        self = shrunk
    }

    /// Empties it, keeping its capacity unless a burst made that large.
    mutating func removeAllKeepingSmallCapacity() {
        removeAll(keepingCapacity: true)
        shrinkIfSparse()
    }
}

extension Set {
    /// Rebuilds the set in storage for twice its count once it is mostly
    /// empty (see above).
    mutating func shrinkIfSparse() {
        guard Weft.isSparse(count: count, capacity: capacity, kept: 1024) else { return }
        var shrunk = Self(minimumCapacity: count * 2)
        for element in self { shrunk.insert(element) }
        self = shrunk
    }
}
