/// Values by object identity, taken in the order each key arrived: a
/// dictionary's own order changes with its hash seed (one per process) and
/// with the objects' addresses, and a deterministic runtime's seed no longer
/// gave the same schedule run after run when wakers or children were woken
/// in it. Not synchronized: its owner guards it.
struct ArrivalOrdered<Value> {
    private var entries: [ObjectIdentifier: (order: UInt64, value: Value)] = [:]

    /// The slots the dictionary holds, for tests.
    var capacity: Int { entries.capacity }
    private var nextOrder: UInt64 = 0

    /// Runs `body` on the value for `key`, made with `initial` (and given the
    /// next place) if the key is new.
    mutating func update<Result>(_ key: ObjectIdentifier, initial: @autoclosure () -> Value,
                                 _ body: (inout Value) -> Result) -> Result {
        defer { nextOrder &+= 1 }
        return body(&entries[key, default: (nextOrder, initial())].value)
    }

    /// Forgets `key`, returning its value.
    mutating func remove(_ key: ObjectIdentifier) -> Value? {
        defer { entries.shrinkIfSparse() }
        return entries.removeValue(forKey: key)?.value
    }

    /// Takes every value, in the order their keys arrived.
    mutating func takeAll() -> [Value] {
        guard !entries.isEmpty else { return [] }
        defer { entries.removeAllKeepingSmallCapacity() }
        return entries.values.sorted { $0.order < $1.order }.map(\.value)
    }
}
