/// How a ``Runtime`` keeps time and picks its next task.
///
/// The default is real time and first-in, first-out scheduling.
/// ``deterministic(seed:)`` is the test mode: a virtual clock and a seeded,
/// pseudo-random choice of the next ready task, so a test can explore many
/// interleavings and replay a failing one from its seed.
public struct RuntimeOptions: Sendable, Equatable {
    /// The seed of the deterministic mode; nil for the normal runtime.
    public var deterministicSeed: UInt64?

    /// The most bytes the loop's connections may hold together (input read
    /// and not yet consumed, plus writes queued for the kernel) before reading
    /// pauses on every connection that holds any: beyond it, only connections
    /// holding nothing (a client whose requests were answered) read on, and
    /// each of them brings in at most one read (64 KiB) before it pauses in
    /// turn. Paused connections read again once the total is back under three
    /// quarters of the budget, or once they hold nothing. So a loop's
    /// connections hold at most this budget plus 64 KiB per connection that
    /// held nothing when it ran out; each also within its own limits
    /// (`TCPStream.setBufferLimits`). From 64 KiB up; default
    /// ``defaultConnectionBufferBudget``.
    public var connectionBufferBudget = RuntimeOptions.defaultConnectionBufferBudget

    /// The default ``connectionBufferBudget``: 32 MiB per loop (about 170
    /// connections at their full 192 KiB).
    public static let defaultConnectionBufferBudget = 32 << 20

    /// Real time, FIFO scheduling.
    public init() {}

    /// The deterministic test mode:
    ///
    /// - **Virtual clock.** Time stands still while tasks run. When no task is
    ///   ready and no I/O is in flight, the clock jumps to the next timer, which
    ///   fires at once: a test of an hour-long `timeout` takes microseconds, and
    ///   timers fire in deadline order (same millisecond: the order they were
    ///   armed; the tasks woken together then run in the seeded order). With I/O
    ///   in flight (any open handle) the loop first waits up to 10 ms of real
    ///   time for it. ``Runtime/advanceTime(by:)`` moves the clock by hand.
    ///   Time futures (`sleep`, `timeout`, `interval`) created in its
    ///   ``Runtime/block(on:)`` read this clock, those created in another
    ///   runtime's that runtime's clock; `sleep(until:)` takes the instant's
    ///   distance from the real clock's now. Outside every `block(on:)`, they
    ///   read the clock of the newest deterministic runtime living on the
    ///   thread: a future made there for a real-time runtime on the same
    ///   thread, or for an older deterministic one, gets a deadline far from
    ///   its clock (it ends at once, or very late). Make time futures inside
    ///   the runtime that awaits them (`lazy { sleepFuture(for:) }`), or keep
    ///   a real-time runtime on a thread of its own.
    /// - **Seeded scheduler.** The next task to poll is picked from the ready
    ///   ones by a pseudo-random generator seeded with `seed`, and so is the
    ///   branch a `select` polls first. The same seed gives the same order.
    ///
    /// Wakes from other threads and real sockets still arrive when the OS
    /// delivers them, so only single-threaded, timer- and channel-driven code
    /// replays exactly.
    public static func deterministic(seed: UInt64) -> RuntimeOptions {
        var options = RuntimeOptions()
        options.deterministicSeed = seed
        return options
    }
}

/// A small, fast pseudo-random generator (SplitMix64): the deterministic
/// scheduler's choices. Not cryptographic.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<bound` (bound > 0).
    mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }
}
