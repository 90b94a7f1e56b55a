import CLibUV
#if canImport(Glibc)
#endif

/// The runtime's live (incomplete) tasks, holding one reference to each, so
/// that `shutdown()` can cancel them all and reports can list them.
///
/// An array with O(1) removal: the last task moves into the removed one's slot,
/// and every task keeps its slot number in `RawTask.registryIndex` (4 bytes
/// beside the state word, where two list links would cost 16). Confined to the
/// loop thread; exclusivity checks are off because no method re-enters another.
final class TaskRegistry {
    @exclusivity(unchecked) private var tasks: UnsafeMutablePointer<Unmanaged<RawTask>>
    @exclusivity(unchecked) private(set) var capacity: Int
    @exclusivity(unchecked) private(set) var count = 0
    private let initialCapacity: Int

    init(capacity: Int = 64) {
        self.capacity = capacity
        self.initialCapacity = capacity
        self.tasks = reallocate(nil, capacity: capacity)
    }

    deinit {
        for index in 0..<count { tasks[index].release() }
        free(tasks)
    }

    /// Adds `task`, retaining it.
    func insert(_ task: RawTask) {
        if count == capacity { grow() }
        precondition(count < Int(UInt32.max), "more than 4 billion live tasks")
        task.registryIndex = UInt32(count)
        tasks[count] = .passRetained(task)
        count += 1
    }

    /// Removes `task`, which must be registered, and releases it.
    func remove(_ task: RawTask) {
        let index = Int(task.registryIndex)
        count -= 1
        if index != count {
            let moved = tasks[count]
            tasks[index] = moved
            moved._withUnsafeGuaranteedRef { $0.registryIndex = UInt32(index) }
        }
        Unmanaged.passUnretained(task).release()
    }

    /// The most recently registered task still live.
    var last: RawTask? {
        count > 0 ? tasks[count - 1].takeUnretainedValue() : nil
    }

    /// Calls `body` with every live task; `body` must not spawn or complete tasks.
    func forEach(_ body: (RawTask) -> Void) {
        for index in 0..<count { tasks[index]._withUnsafeGuaranteedRef(body) }
    }

    /// Whether `predicate` holds for some live task, stopping at the first;
    /// `predicate` must not spawn or complete tasks.
    func contains(where predicate: (RawTask) -> Bool) -> Bool {
        for index in 0..<count where tasks[index]._withUnsafeGuaranteedRef(predicate) { return true }
        return false
    }

    /// Doubles the capacity with `realloc`, which remaps a large array instead
    /// of copying it.
    private func grow() {
        capacity *= 2
        tasks = reallocate(tasks, capacity: capacity)
    }

    /// Whether a burst made the array grow to four times the live tasks or more.
    var isMostlyEmpty: Bool { capacity > initialCapacity && count <= capacity / 4 }

    /// Gives back what a burst of tasks, ended since, made the array grow to:
    /// once at most a quarter of it is used, it shrinks to twice the live
    /// tasks (so one more burst of that size does not grow it again at once).
    /// For an idle loop, not a busy one: it copies the live tasks' slots.
    func shrinkIfMostlyEmpty() {
        guard isMostlyEmpty else { return }
        var shrunk = initialCapacity
        while shrunk < count * 2 { shrunk *= 2 }
        guard shrunk < capacity else { return }
        capacity = shrunk
        tasks = reallocate(tasks, capacity: capacity)
    }
}
