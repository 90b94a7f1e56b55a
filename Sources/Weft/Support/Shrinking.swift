// Arrays, dictionaries and sets never give back what they grew to: removing
// elements keeps the capacity. A structure that lives long and that a burst
// fills (100,000 connections, then a few) would keep the burst's memory for
// good, still allocated, which no heap trim can return. These rebuild it at
// the size of what is left once most of it is gone: at most an eighth used,
// past 1,024 slots, so a structure that shrinks must lose most of
// what it held again before the next rebuild (amortised O(1) per removal).

/// The capacity below which nothing is rebuilt.
private let keptCapacity = 1024

extension Array {
    /// Moves the elements, in order, into storage for twice their count once
    /// the array is mostly empty (see above).
    mutating func shrinkIfSparse() {
        guard capacity > keptCapacity, count <= capacity / 8 else { return }
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
        guard capacity > keptCapacity, count <= capacity / 8 else { return }
        var shrunk = Self(minimumCapacity: count * 2)
        for (key, value) in self { shrunk[key] = value }
        self = shrunk
    }

    /// Empties it, keeping its capacity unless a burst made that large.
    mutating func removeAllKeepingSmallCapacity() {
        if capacity > keptCapacity { self = [:] } else { removeAll(keepingCapacity: true) }
    }
}

extension Set {
    /// Rebuilds the set in storage for twice its count once it is mostly
    /// empty (see above).
    mutating func shrinkIfSparse() {
        guard capacity > keptCapacity, count <= capacity / 8 else { return }
        var shrunk = Self(minimumCapacity: count * 2)
        for element in self { shrunk.insert(element) }
        self = shrunk
    }
}
