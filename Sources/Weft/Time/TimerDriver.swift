import CLibUV
import CWeftSupport

/// All of a runtime's timers, driven by one libuv timer: a binary min-heap of
/// deadlines in Swift, as Tokio does, so a sleep costs neither a libuv handle nor
/// a heap node in C.
///
/// The libuv timer is armed for the earliest deadline, rounded up to libuv's
/// millisecond clock, so no entry ever fires early; when it fires, every entry
/// whose deadline has passed (by `uv_hrtime`) is woken in deadline order (ties in
/// insertion order). With no entry left the libuv timer is stopped, so an idle
/// runtime keeps no timer active.
///
/// The `uv_timer_t` is allocated apart from this object and freed in its close
/// callback (`close()`); its `data` points back here unretained and is cleared by
/// `close()`, which the owning `LoopCore` calls at shutdown.
final class TimerDriver {
    private struct Slot {
        var deadline: UInt64
        var sequence: UInt64
        let entry: Unmanaged<TimerEntry>

        func precedes(_ other: Slot) -> Bool {
            deadline < other.deadline || (deadline == other.deadline && sequence < other.sequence)
        }
    }

    private let loop: UnsafeMutablePointer<uv_loop_t>
    private var handle: UnsafeMutablePointer<uv_timer_t>?
    @exclusivity(unchecked) private var heap: [Slot] = []
    @exclusivity(unchecked) private var nextSequence: UInt64 = 0
    /// The loop time (ms) the libuv timer is armed for; `.max` when stopped.
    @exclusivity(unchecked) private var armedDueMilliseconds: UInt64 = .max

    init(loop: UnsafeMutablePointer<uv_loop_t>) throws(WeftError) {
        self.loop = loop
        var error: Int32 = 0
        guard let handle = weft_timer_new(loop, &error) else {
            throw WeftError(uvCode: error, operation: "uv_timer_init")
        }
        self.handle = handle
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    /// Timers armed and not yet fired or dropped.
    var pendingCount: Int { heap.count }

    /// A lower bound on the current time: the loop's cached millisecond clock.
    /// A deadline at or before it has certainly passed.
    var coarseNow: UInt64 { uv_now(loop) &* 1_000_000 }

    /// Registers a timer that wakes `waker` at `deadline`.
    func schedule(deadline: UInt64, waker: Waker) -> TimerEntry {
        let entry = TimerEntry(driver: self, deadline: deadline, waker: waker)
        guard handle != nil else {
            // Shut down: the timer will never fire, as the loop will never run.
            return entry
        }
        let slot = Slot(deadline: deadline, sequence: nextSequence, entry: .passUnretained(entry))
        nextSequence &+= 1
        heap.append(slot)
        siftUp(heap.count - 1)
        if entry.heapIndex == 0 { arm() }
        return entry
    }

    /// Removes a dropped entry that has not fired.
    func cancel(_ entry: TimerEntry) {
        let index = entry.heapIndex
        guard index >= 0 else { return }
        entry.heapIndex = -1
        let last = heap.removeLast()
        if index < heap.count {
            heap[index] = last
            last.entry._withUnsafeGuaranteedRef { $0.heapIndex = index }
            siftDown(siftUp(index))
        }
        if heap.isEmpty, let handle {
            uv_timer_stop(handle)
            armedDueMilliseconds = .max
        }
    }

    /// Fires every entry whose deadline has passed, then re-arms.
    fileprivate func fire() {
        armedDueMilliseconds = .max
        let now = uv_hrtime()
        while let first = heap.first, first.deadline <= now {
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                last.entry._withUnsafeGuaranteedRef { $0.heapIndex = 0 }
                siftDown(0)
            }
            first.entry._withUnsafeGuaranteedRef { entry in
                entry.heapIndex = -1
                entry.hasFired = true
                entry.waker.take()?.wake()
            }
        }
        arm()
    }

    /// Arms the libuv timer for the earliest deadline, if it is not armed for it.
    private func arm() {
        guard let handle else { return }
        guard let first = heap.first else {
            uv_timer_stop(handle)
            armedDueMilliseconds = .max
            return
        }
        let due = first.deadline / 1_000_000 + (first.deadline % 1_000_000 == 0 ? 0 : 1)
        guard due < armedDueMilliseconds else { return }
        // Tasks may have run for a while since the loop last read the clock.
        uv_update_time(loop)
        let now = uv_now(loop)
        armedDueMilliseconds = due
        uv_timer_start(handle, { handle in
            guard let data = handle?.pointee.data else { return }
            Unmanaged<TimerDriver>.fromOpaque(data).takeUnretainedValue().fire()
        }, due > now ? due - now : 0, 0)
    }

    /// Closes the libuv timer. Entries still pending never fire.
    func close() {
        guard let handle else { return }
        self.handle = nil
        for slot in heap { slot.entry._withUnsafeGuaranteedRef { $0.heapIndex = -1 } }
        heap.removeAll()
        weft_close_and_free(weft_timer_handle(handle))
    }

    // MARK: - Heap

    @discardableResult
    private func siftUp(_ start: Int) -> Int {
        var index = start
        let slot = heap[index]
        while index > 0 {
            let parent = (index - 1) / 2
            guard slot.precedes(heap[parent]) else { break }
            heap[index] = heap[parent]
            heap[index].entry._withUnsafeGuaranteedRef { $0.heapIndex = index }
            index = parent
        }
        heap[index] = slot
        slot.entry._withUnsafeGuaranteedRef { $0.heapIndex = index }
        return index
    }

    private func siftDown(_ start: Int) {
        var index = start
        let slot = heap[index]
        let count = heap.count
        while true {
            let left = 2 * index + 1
            guard left < count else { break }
            let right = left + 1
            let child = right < count && heap[right].precedes(heap[left]) ? right : left
            guard heap[child].precedes(slot) else { break }
            heap[index] = heap[child]
            heap[index].entry._withUnsafeGuaranteedRef { $0.heapIndex = index }
            index = child
        }
        heap[index] = slot
        slot.entry._withUnsafeGuaranteedRef { $0.heapIndex = index }
    }
}

/// One armed timer. Owned by its `Sleep`; dropping it (with the sleep) removes it
/// from the driver, so a dropped sleep never wakes anything (invariant 5).
final class TimerEntry {
    let driver: TimerDriver
    let deadline: UInt64
    /// Position in the driver's heap; -1 when not in it (fired, cancelled or shut down).
    var heapIndex = -1
    /// Set when the deadline passed and the entry was woken.
    var hasFired = false
    /// Whom to wake; taken when firing.
    var waker: Waker?

    init(driver: TimerDriver, deadline: UInt64, waker: Waker) {
        self.driver = driver
        self.deadline = deadline
        self.waker = waker
    }

    deinit {
        if heapIndex >= 0 { driver.cancel(self) }
    }
}
