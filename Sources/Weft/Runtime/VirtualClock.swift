import CWeftSupport

/// The clock of a deterministic runtime (``RuntimeOptions/deterministic(seed:)``):
/// nanoseconds that move only when the runtime jumps to its next timer or the
/// test calls ``Runtime/advanceTime(by:)``.
///
/// `install()` makes it the calling thread's clock, so every time future created
/// on that thread (`sleep`, `timeout`, `interval`) reads it; `uninstall()` puts
/// back the previous one. The value lives in memory allocated here because the
/// thread-local pointer must stay valid while installed: that is the one unsafe
/// pointer, allocated in `init`, freed in `deinit`, and `deinit` only runs after
/// the owning `EventLoop` has uninstalled it (shutdown precedes deinit).
final class VirtualClock {
    /// Where virtual time starts: a fixed value, so runs replay exactly.
    static let startNanoseconds: UInt64 = 1_000_000_000_000

    private let storage: UnsafeMutablePointer<UInt64>
    private var previous: UnsafePointer<UInt64>?
    private var isInstalled = false

    init() {
        storage = .allocate(capacity: 1)
        storage.initialize(to: Self.startNanoseconds)
    }

    deinit {
        uninstall()
        storage.deallocate()
    }

    /// The virtual time, in nanoseconds.
    var nanoseconds: UInt64 { storage.pointee }

    /// Moves the clock forward to `nanoseconds` (never back).
    func advance(to nanoseconds: UInt64) {
        storage.pointee = max(storage.pointee, nanoseconds)
    }

    /// Time elapsed on this clock since it started.
    var elapsed: Duration { .nanoseconds(Int64(storage.pointee - Self.startNanoseconds)) }

    func install() {
        guard !isInstalled else { return }
        previous = weft_set_virtual_clock(storage)
        isInstalled = true
    }

    /// Restores the previous clock, if this one is still the thread's clock.
    func uninstall() {
        guard isInstalled else { return }
        isInstalled = false
        if weft_virtual_clock() == UnsafePointer(storage) {
            _ = weft_set_virtual_clock(previous)
        }
    }
}
