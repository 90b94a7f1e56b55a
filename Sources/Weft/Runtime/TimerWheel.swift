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
/// Each slot is an ``IntrusiveList`` through the entries (no allocation per
/// timer beyond the entry itself), kept in insertion order so timers due in
/// the same millisecond fire in the order they were armed. Its links are
/// unretained: an entry leaves the wheel in its deinit at the latest.
struct TimerWheel {
    static let levels = 6
    static let slotsPerLevel = 64
    static let bitsPerLevel: UInt64 = 6
    /// The furthest ahead of `elapsed` a deadline can be placed exactly.
    static let maximumSpan: UInt64 = (1 << (bitsPerLevel * UInt64(levels))) - 1

    /// The wheel's current time (ms); every entry's slot is relative to it.
    private(set) var elapsed: UInt64
    private var slots: [IntrusiveList<TimerEntry>]
    /// Bit `s` of `occupied[k]` is set when slot `s` of level `k` is non-empty.
    private var occupied: [UInt64]
    /// Entries in the wheel.
    private(set) var count = 0

    init(now: UInt64) {
        elapsed = now
        slots = Array(repeating: IntrusiveList(), count: Self.levels * Self.slotsPerLevel)
        occupied = Array(repeating: 0, count: Self.levels)
    }

    /// Adds `entry` (not in the wheel, deadline after `elapsed`: an entry due
    /// already must be fired by the caller instead, or its slot would be a full
    /// turn of its level away).
    mutating func insert(_ entry: TimerEntry) {
        precondition(entry.deadlineMilliseconds > elapsed, "timer inserted at or before the wheel's time")
        let when = min(entry.deadlineMilliseconds, elapsed + Self.maximumSpan)
        let level = Self.level(for: when, elapsed: elapsed)
        let slot = Int((when >> (UInt64(level) * Self.bitsPerLevel)) & 63)
        let index = level * Self.slotsPerLevel + slot
        entry.wheelIndex = index
        if slots[index].isEmpty { occupied[level] |= 1 << UInt64(slot) }
        slots[index].append(entry)
        count += 1
    }

    /// Removes `entry`, which must be in the wheel.
    mutating func remove(_ entry: TimerEntry) {
        let index = entry.wheelIndex
        slots[index].remove(entry)
        if slots[index].isEmpty {
            occupied[index / Self.slotsPerLevel] &= ~(1 << UInt64(index % Self.slotsPerLevel))
        }
        entry.wheelIndex = -1
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
    /// has passed, in deadline order (the same millisecond: arming order).
    /// A slot's entries fire only when due at the slot's own time; the others
    /// are re-inserted lower down, and fire from there in their turn. (Fired
    /// whenever due by `now`, the entries of one higher-level slot went in
    /// arming order, a 100 ms sleep before a 90 ms one armed after it, when
    /// the loop ran late or a virtual clock jumped past both.)
    mutating func advance(to now: UInt64, expire: (TimerEntry) -> Void) {
        while let (deadline, index) = nextExpiration(), deadline <= now {
            elapsed = max(elapsed, deadline)
            // Detach the whole slot, then expire or re-insert each entry.
            var slot = slots[index]
            slots[index] = IntrusiveList()
            occupied[index / Self.slotsPerLevel] &= ~(1 << UInt64(index % Self.slotsPerLevel))
            while let current = slot.popFirst() {
                let entry = current.takeUnretainedValue()
                entry.wheelIndex = -1
                count -= 1
                if entry.deadlineMilliseconds <= elapsed {
                    expire(entry)
                } else {
                    insert(entry)
                }
            }
        }
        elapsed = max(elapsed, now)
    }

    /// Detaches every entry (for shutdown).
    mutating func removeAll() {
        for index in slots.indices {
            while let entry = slots[index].popFirst() {
                entry._withUnsafeGuaranteedRef { $0.wheelIndex = -1 }
            }
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
