import CWeftSupport

/// The clock of a deterministic runtime (``RuntimeOptions/deterministic(seed:)``):
/// nanoseconds that move only when the runtime jumps to its next timer or the
/// test calls ``Runtime/advanceTime(by:)``.
///
/// Made, it is the calling thread's clock, so every time future created on
/// that thread (`sleep`, `timeout`, `interval`) reads it; `uninstall()` gives
/// the thread back the clock installed before it (or real time). Runtimes
/// can end in any order and on any thread: the clocks of a thread form a
/// chain in C (`weft_virtual_clock_install`), each counted by its owner and
/// by the chain, and an uninstalled one leaves the chain at that thread's next
/// read. (A clock kept in this object, with the thread's pointer put back to
/// the one it replaced, left that pointer at freed memory when two runtimes
/// ended out of order, or one ended on another thread.)
final class VirtualClock {
    /// Where virtual time starts: a fixed value, so runs replay exactly.
    static let startNanoseconds: UInt64 = 1_000_000_000_000

    private let node: OpaquePointer
    /// The time, in the node (valid while this object holds its reference).
    private let storage: UnsafeMutablePointer<UInt64>
    private var isInstalled = true

    /// A clock at ``startNanoseconds``, installed on the calling thread.
    init() {
        guard let node = weft_virtual_clock_install(Self.startNanoseconds) else {
            fatalError("out of memory for a virtual clock")
        }
        self.node = node
        storage = weft_virtual_clock_time(node)
    }

    deinit {
        uninstall()
        weft_virtual_clock_release(node)
    }

    /// The virtual time, in nanoseconds.
    var nanoseconds: UInt64 { storage.pointee }

    /// Where the time is, for `weft_virtual_clock_drive` (valid while this
    /// object lives).
    var time: UnsafePointer<UInt64> { UnsafePointer(storage) }

    /// The clock's last nanosecond, about 292 years after its start: just
    /// before ``MonotonicTime/distantFuture``, the deadline of the sleeps
    /// that never end, so that no advance, however large, ends them (past it,
    /// they fired, `elapsed` overflowed and later advances wrapped round).
    static let lastNanosecond = MonotonicTime.distantFuture - 1

    /// Moves the clock forward to `nanoseconds` (never back, never past
    /// ``lastNanosecond``).
    func advance(to nanoseconds: UInt64) {
        storage.pointee = min(max(storage.pointee, nanoseconds), Self.lastNanosecond)
    }

    /// Time elapsed on this clock since it started.
    var elapsed: Duration { .nanoseconds(Int64(storage.pointee - Self.startNanoseconds)) }

    /// Stops being its thread's clock. Idempotent.
    func uninstall() {
        guard isInstalled else { return }
        isInstalled = false
        weft_virtual_clock_uninstall(node)
    }
}
