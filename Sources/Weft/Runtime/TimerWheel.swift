/// A hierarchical timing wheel with millisecond ticks, as in Tokio and the
/// Varghese–Lauck paper: O(1) insert and removal, however many timers are armed.
///
/// Six levels of 64 slots; a slot at level `k` spans `64^k` ms, so the wheel
/// covers 2^36 ms (about two years) ahead of `elapsed`. An entry lives in the
/// level given by the highest bit in which its deadline differs from `elapsed`;
/// when a higher-level slot comes due its entries are re-inserted lower down
/// (cascading) until they reach level 0 and fire. Entries further away than the
/// wheel covers are parked in the top level and re-inserted when reached.
///
/// The timers live in the wheel's own slab (`nodes`, reused through a free
/// list), linked into their slot by index: no allocation per timer, and a
/// timer's memory is the wheel's, so a sleep dropped on another thread can
/// hand its release to the loop by number (``ArmedTimer``). Each slot's list
/// is kept in insertion order, so timers due in the same millisecond fire in
/// the order they were armed. A node is allocated when armed and freed only
/// by ``release(_:)``: a fired node stays, with `hasFired` set, until its
/// sleep lets it go.
///
/// Nodes cannot move (their numbers are handed out), so the slab gives back
/// what a burst made it grow to from its end: ``shrinkIfSparse()``, on an
/// idle loop, cuts off the free end of a slab mostly free and lines its free
/// list up in ascending order, and a wheel mostly free puts a freed node of
/// the slab's upper half at the list's end, so new timers take low nodes and
/// the top ones, freed, stay free for the next cut.
struct TimerWheel {
    static let levels = 6
    static let slotsPerLevel = 64
    static let bitsPerLevel: UInt64 = 6
    /// The furthest ahead of `elapsed` a deadline can be placed exactly.
    static let maximumSpan: UInt64 = (1 << (bitsPerLevel * UInt64(levels))) - 1

    /// One timer.
    struct Node {
        /// The deadline, rounded up to whole milliseconds of `uv_hrtime`.
        var deadline: UInt64
        /// Whom to wake; taken when firing.
        var waker: Waker?
        /// The next and previous node of its slot (-1: none); a free node's
        /// `next` is the next free one.
        var next: Int32 = -1
        var previous: Int32 = -1
        /// The slot holding it; -1 when not in the wheel (fired, removed,
        /// shut down or free).
        var slot: Int32 = -1
        /// Set when the deadline passed and the node was expired.
        var hasFired = false
        /// Set while the node is on the free list.
        var isFree = false
    }

    /// The wheel's current time (ms); every entry's slot is relative to it.
    private(set) var elapsed: UInt64
    /// Every node armed and not yet released, and the free ones.
    private(set) var nodes: [Node] = []
    private var firstFree: Int32 = -1
    /// The free list's last node (-1: empty), where a wheel mostly free puts
    /// the nodes of the slab's upper half.
    private var lastFree: Int32 = -1
    private var nodesInUse = 0
    /// Each slot's first and last node (-1: empty).
    private var heads: [Int32]
    private var tails: [Int32]
    /// Bit `s` of `occupied[k]` is set when slot `s` of level `k` is non-empty.
    private var occupied: [UInt64]
    /// Entries in the wheel.
    private(set) var count = 0

    init(now: UInt64) {
        elapsed = now
        heads = Array(repeating: -1, count: Self.levels * Self.slotsPerLevel)
        tails = heads
        occupied = Array(repeating: 0, count: Self.levels)
    }

    /// Makes `waker` the one `index` wakes.
    mutating func register(_ waker: Waker, for index: Int32) {
        nodes[Int(index)].waker.register(waker)
    }

    /// A node for a timer due at `deadline` (ms), not yet in the wheel.
    mutating func allocate(deadline: UInt64, waker: Waker) -> Int32 {
        nodesInUse += 1
        let node = Node(deadline: deadline, waker: waker)
        guard firstFree >= 0 else {
            nodes.append(node)
            return Int32(nodes.count - 1)
        }
        let index = firstFree
        firstFree = nodes[Int(index)].next
        if firstFree < 0 { lastFree = -1 }
        nodes[Int(index)] = node
        return index
    }

    /// Takes `index` out of the wheel if it is in it, frees it, and returns
    /// its waker (for the caller to drop once the wheel is left: a waker can
    /// be the last owner of other sleeps), and whether the slab's end may now
    /// be cut off (``shrinkIfSparse()``). An idle wheel gives back a large
    /// slab at once: the memory of a burst of timers.
    mutating func release(_ index: Int32) -> (waker: Waker?, shrinkable: Bool) {
        if nodes[Int(index)].slot >= 0 { remove(index) }
        let waker = nodes[Int(index)].waker.take()
        nodesInUse -= 1
        if nodesInUse == 0 && nodes.count > 1024 {
            nodes = []
            (firstFree, lastFree) = (-1, -1)
            return (waker, false)
        }
        let isHigh = isSparse && Int(index) >= nodes.count / 2
        // The release that made the slab mostly free asks for a look too: its
        // end may have come free before (a burst's later timers first).
        let becameSparse = isSparse && (nodesInUse + 1) * 4 >= nodes.count
        if isHigh && lastFree >= 0 {
            // Last to be taken again: the slab's end may come free.
            nodes[Int(index)] = Node(deadline: 0, waker: nil, next: -1, isFree: true)
            nodes[Int(lastFree)].next = index
            lastFree = index
        } else {
            nodes[Int(index)] = Node(deadline: 0, waker: nil, next: firstFree, isFree: true)
            if firstFree < 0 { lastFree = index }
            firstFree = index
        }
        return (waker, isHigh || becameSparse)
    }

    /// Whether most of a large slab is free.
    private var isSparse: Bool {
        nodes.count > 1024 && nodesInUse * 4 < nodes.count
    }

    /// The nodes the slab holds, used or free, and the ones in use; for tests.
    var slabCounts: (nodes: Int, inUse: Int) { (nodes.count, nodesInUse) }

    /// When most of a large slab is free: cuts off its free end, if that is
    /// at least half of it, and lines the free list up in ascending order,
    /// so new timers take low nodes and the end stays free for a later cut.
    /// O(slab); for an idle loop.
    mutating func shrinkIfSparse() {
        guard isSparse else { return }
        var end = nodes.count
        while end > 0 && nodes[end - 1].isFree { end -= 1 }
        if end * 2 <= nodes.count { nodes = Array(nodes[0..<end]) }  // new storage, of `end` nodes
        (firstFree, lastFree) = (-1, -1)
        for index in stride(from: nodes.count - 1, through: 0, by: -1) where nodes[index].isFree {
            nodes[index].next = firstFree
            if firstFree < 0 { lastFree = Int32(index) }
            firstFree = Int32(index)
        }
    }

    /// Adds `index` (not in the wheel, deadline after `elapsed`: an entry due
    /// already must be fired by the caller instead, or its slot would be a full
    /// turn of its level away).
    mutating func insert(_ index: Int32) {
        let deadline = nodes[Int(index)].deadline
        precondition(deadline > elapsed, "timer inserted at or before the wheel's time")
        let when = min(deadline, elapsed + Self.maximumSpan)
        let level = Self.level(for: when, elapsed: elapsed)
        let slot = Int((when >> (UInt64(level) * Self.bitsPerLevel)) & 63)
        let position = level * Self.slotsPerLevel + slot
        let last = tails[position]
        nodes[Int(index)].slot = Int32(position)
        nodes[Int(index)].next = -1
        nodes[Int(index)].previous = last
        if last >= 0 {
            nodes[Int(last)].next = index
        } else {
            heads[position] = index
            occupied[level] |= 1 << UInt64(slot)
        }
        tails[position] = index
        count += 1
    }

    /// Removes `index`, which must be in the wheel.
    mutating func remove(_ index: Int32) {
        let (next, previous) = (nodes[Int(index)].next, nodes[Int(index)].previous)
        let position = Int(nodes[Int(index)].slot)
        if previous >= 0 { nodes[Int(previous)].next = next } else { heads[position] = next }
        if next >= 0 { nodes[Int(next)].previous = previous } else { tails[position] = previous }
        if heads[position] < 0 {
            occupied[position / Self.slotsPerLevel] &= ~(1 << UInt64(position % Self.slotsPerLevel))
        }
        nodes[Int(index)].slot = -1
        count -= 1
    }

    /// The time (ms) at which the earliest non-empty slot comes due, if any.
    /// For a slot above level 0 that is when its entries cascade, not fire.
    func nextExpiration() -> (deadline: UInt64, index: Int)? {
        for level in 0..<Self.levels where occupied[level] != 0 {
            let shift = UInt64(level) * Self.bitsPerLevel
            let slotRange: UInt64 = 1 << shift
            let levelRange = slotRange << Self.bitsPerLevel
            let currentSlot = Int((elapsed >> shift) & 63)
            // The top level's current slot holds only entries of a later lap
            // (one that differs from `elapsed` above the wheel's range, or
            // parked at `elapsed + maximumSpan`): it comes last. Searched
            // first, it hid every other top-level slot behind it.
            let first = level == Self.levels - 1 ? (currentSlot + 1) % Self.slotsPerLevel : currentSlot
            let rotated = occupied[level].rotatedRight(by: first)
            let slot = (rotated.trailingZeroBitCount + first) % Self.slotsPerLevel
            var deadline = (elapsed & ~(levelRange - 1)) + UInt64(slot) * slotRange
            if deadline <= elapsed && level > 0 {
                // Only the top level wraps: its slots form a ring past its range.
                deadline += levelRange
            }
            return (max(deadline, elapsed), level * Self.slotsPerLevel + slot)
        }
        return nil
    }

    /// Advances to `now` (ms), calling `expire` for every entry whose deadline
    /// has passed, in deadline order (the same millisecond: arming order),
    /// with the node to mark (`expire` must not touch the wheel).
    /// A slot's entries fire only when due at the slot's own time; the others
    /// are re-inserted lower down, and fire from there in their turn. (Fired
    /// whenever due by `now`, the entries of one higher-level slot went in
    /// arming order, a 100 ms sleep before a 90 ms one armed after it, when
    /// the loop ran late or a virtual clock jumped past both.)
    mutating func advance(to now: UInt64, expire: (inout Node) -> Void) {
        while let (deadline, position) = nextExpiration(), deadline <= now {
            elapsed = max(elapsed, deadline)
            // Detach the whole slot, then expire or re-insert each entry.
            var current = heads[position]
            heads[position] = -1
            tails[position] = -1
            occupied[position / Self.slotsPerLevel] &= ~(1 << UInt64(position % Self.slotsPerLevel))
            while current >= 0 {
                let index = current
                current = nodes[Int(index)].next
                nodes[Int(index)].slot = -1
                count -= 1
                if nodes[Int(index)].deadline <= elapsed {
                    expire(&nodes[Int(index)])
                } else {
                    insert(index)
                }
            }
        }
        elapsed = max(elapsed, now)
    }

    /// Detaches every entry (for shutdown); the nodes stay until released.
    mutating func removeAll() {
        for position in heads.indices {
            var current = heads[position]
            while current >= 0 {
                nodes[Int(current)].slot = -1
                current = nodes[Int(current)].next
            }
            heads[position] = -1
            tails[position] = -1
        }
        for level in occupied.indices { occupied[level] = 0 }
        count = 0
    }

    private static func level(for when: UInt64, elapsed: UInt64) -> Int {
        let masked = (elapsed ^ when) | 63
        let significant = 63 - masked.leadingZeroBitCount
        return min(significant / Int(bitsPerLevel), levels - 1)
    }
}

extension UInt64 {
    fileprivate func rotatedRight(by count: Int) -> UInt64 {
        count == 0 ? self : (self >> UInt64(count)) | (self << UInt64(64 - count))
    }
}
