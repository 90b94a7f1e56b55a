import CLibUV
import CWeftSupport

/// All of a runtime's timers, driven by one libuv timer: a ``TimerWheel`` in
/// Swift, as Tokio does, so a sleep costs neither a libuv handle nor a heap node
/// in C, and arming or dropping one is O(1).
///
/// Deadlines are rounded up to whole milliseconds and an entry fires only once
/// `uv_hrtime` has reached that millisecond, so no sleep ever ends early; on an
/// idle loop it ends at most about a millisecond late. With no entry left the
/// libuv timer is stopped, so an idle runtime keeps no timer active.
///
/// With a ``VirtualClock`` (deterministic mode) the libuv timer is never
/// started: the runtime calls ``fireNext()`` to jump to the next deadline.
///
/// The `uv_timer_t` is allocated apart from this object and freed in its close
/// callback (`close()`); its `data` points back here unretained and is cleared by
/// `close()`, which the owning `EventLoop` calls at shutdown.
final class TimerDriver {
    private let loop: UnsafeMutablePointer<uv_loop_t>
    private var handle: UnsafeMutablePointer<uv_timer_t>?
    @exclusivity(unchecked) private var wheel: TimerWheel
    /// The loop time (ms) the libuv timer is armed for; `.max` when stopped.
    @exclusivity(unchecked) private var armedDueMilliseconds: UInt64 = .max
    /// The wakers of the entries a ``fire()`` expired, woken once the wheel
    /// is left (kept between fires, so it allocates once).
    private var firedWakers: [Waker] = []
    let virtualClock: VirtualClock?

    init(loop: UnsafeMutablePointer<uv_loop_t>, virtualClock: VirtualClock? = nil) throws(WeftError) {
        self.loop = loop
        self.virtualClock = virtualClock
        wheel = TimerWheel(now: Self.now(on: virtualClock) / 1_000_000)
        var error: Int32 = 0
        guard let handle = weft_timer_new(loop, &error) else {
            throw WeftError(uvCode: error, operation: "uv_timer_init")
        }
        self.handle = handle
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    /// Armed sleeps that never end (due past the clock's last nanosecond,
    /// ``VirtualClock/lastNanosecond``): counted, kept out of the wheel. In
    /// it, their slot's cascades were expirations, so a virtual clock jumping
    /// to its next timer went from one to the next, about 140 of them, to its
    /// last nanosecond, where every later sleep was out of reach for ever.
    private var endlessCount = 0

    /// Timers armed and not yet fired or dropped.
    var pendingCount: Int { wheel.count + endlessCount }

    /// Whether a deadline (ms) lies past the last nanosecond any clock reaches.
    private static func isEndless(_ milliseconds: UInt64) -> Bool {
        milliseconds > VirtualClock.lastNanosecond / 1_000_000
    }

    /// The current time (ns): the virtual clock's, or `uv_hrtime`.
    private static func now(on virtualClock: VirtualClock?) -> UInt64 {
        virtualClock?.nanoseconds ?? uv_hrtime()
    }

    /// A lower bound on the current time: the loop's cached millisecond clock.
    /// A deadline at or before it has certainly passed.
    var coarseNow: UInt64 { virtualClock?.nanoseconds ?? uv_now(loop) &* 1_000_000 }

    /// Registers a timer that wakes `waker` once `deadline` (ns) has passed
    /// and returns its node, or returns `nil` if it has passed already. The
    /// node is the caller's until it ``release(_:)``s it.
    func schedule(deadline: UInt64, waker: Waker) -> Int32? {
        let milliseconds = deadline / 1_000_000 + (deadline % 1_000_000 == 0 ? 0 : 1)
        // The wheel's clock trails real time, so this never ends a sleep early.
        if milliseconds <= wheel.elapsed || deadline <= coarseNow { return nil }
        let node = wheel.allocate(deadline: milliseconds, waker: waker)
        // After shutdown the loop never runs again: the node simply never fires.
        guard handle != nil else { return node }
        if Self.isEndless(milliseconds) {
            endlessCount += 1
            return node
        }
        wheel.insert(node)
        if milliseconds < armedDueMilliseconds { arm() }
        return node
    }

    /// Whether `node`'s deadline has passed (and it woke its waker).
    func hasFired(_ node: Int32) -> Bool {
        wheel.nodes[Int(node)].hasFired
    }

    /// Makes `waker` the one `node` wakes.
    func register(_ waker: Waker, for node: Int32) {
        wheel.register(waker, for: node)
    }

    /// Disarms `node` if it has not fired, frees it, and returns its waker,
    /// which the caller drops (or wakes) now that the wheel is left, and
    /// whether the idle loop may give back the end of the wheel's slab.
    func release(_ node: Int32) -> (waker: Waker?, slabShrinkable: Bool) {
        if handle != nil && Self.isEndless(wheel.nodes[Int(node)].deadline) { endlessCount -= 1 }
        let (waker, shrinkable) = wheel.release(node)
        if wheel.count == 0, armedDueMilliseconds != .max, let handle {
            uv_timer_stop(handle)
            armedDueMilliseconds = .max
        }
        return (waker, shrinkable)
    }

    /// The wheel's slab, for tests.
    var slabCounts: (nodes: Int, inUse: Int) { wheel.slabCounts }

    /// Fires every entry whose deadline has passed, then re-arms.
    ///
    /// The wakers are woken, and let go, only once the wheel is consistent
    /// again: a waker may be the last owner of other sleeps (a task object of
    /// a user's executor), whose entries, dropped mid-advance, left the slot
    /// being expired or the wheel's count wrong, and were then touched freed.
    fileprivate func fire() {
        armedDueMilliseconds = .max
        var fired: [Waker] = []
        swap(&fired, &firedWakers)
        wheel.advance(to: Self.now(on: virtualClock) / 1_000_000) { node in
            node.hasFired = true
            if let waker = node.waker.take() { fired.append(waker) }
        }
        arm()
        for waker in fired { waker.wake() }
        fired.removeAll(keepingCapacity: true)
        firedWakers = fired
    }

    /// Lets go of what a burst of timers fired in one turn made the list of
    /// their wakers grow to (it is kept between turns, and empty between
    /// them), and of the free end of a wheel's slab mostly free.
    func releaseIdleMemory() {
        firedWakers.shrinkIfSparse(keeping: 4096)
        wheel.shrinkIfSparse()
    }

    /// Deterministic mode: moves the virtual clock to the wheel's next
    /// expiration and fires what is due there. False when no timer is armed
    /// (sleeps that never end are not in the wheel).
    func fireNext() -> Bool {
        guard let virtualClock, handle != nil, let (due, _) = wheel.nextExpiration() else { return false }
        virtualClock.advance(to: due * 1_000_000)
        fire()
        return true
    }

    /// Deterministic mode: moves the virtual clock forward by `nanoseconds`,
    /// firing every timer due on the way, in deadline order.
    func advanceVirtualTime(by nanoseconds: UInt64) {
        guard let virtualClock else { return }
        virtualClock.advance(to: virtualClock.nanoseconds &+ nanoseconds)
        fire()
    }

    /// Arms the libuv timer for the wheel's next expiration, unless it is
    /// already armed for it. Never in deterministic mode.
    private func arm() {
        guard let handle, virtualClock == nil else { return }
        guard let (due, _) = wheel.nextExpiration() else {
            uv_timer_stop(handle)
            armedDueMilliseconds = .max
            return
        }
        guard due < armedDueMilliseconds else { return }
        // Tasks may have run for a while since the loop last read the clock.
        uv_update_time(loop)
        let now = uv_now(loop)
        armedDueMilliseconds = due
        uv_timer_start(handle, { handle in
            handleOwner(handle, as: TimerDriver.self)?.fire()
        }, due > now ? due - now : 0, 0)
    }

    /// Closes the libuv timer. Entries still pending never fire.
    func close() {
        guard let handle else { return }
        self.handle = nil
        wheel.removeAll()
        endlessCount = 0
        weft_close_and_free(weft_timer_handle(handle))
    }
}

/// What an armed ``Sleep`` holds: the owner of its node in its loop's
/// ``TimerWheel``, which is that loop thread's alone. Dropped, it releases
/// the node on that thread: at once when dropped there (a task dropping its
/// sleep, the usual case), else through ``EventLoop/onLoop(_:)`` (a sleep
/// handed out of the loop by an await, as the rest of `selectAll` or a
/// task's output, and dropped on another thread; an ``Interval`` reset off
/// the loop). Until that job runs the timer may still fire, and then calls
/// the waker it holds once.
final class ArmedTimer {
    let loop: EventLoop
    let node: Int32
    /// Set by the owner before it drops this timer to arm another: the task
    /// waiting on this one is woken once it is disarmed, to poll the new one.
    var wakesWhenDropped = false

    init(loop: EventLoop, node: Int32) {
        self.loop = loop
        self.node = node
    }

    deinit {
        let (loop, node, wakes) = (loop, node, wakesWhenDropped)
        // `onLoop`'s own check, made first: its closure would be allocated
        // for every sleep even where it runs at once.
        if loop.closesHere {
            Self.release(node, of: loop, waking: wakes)
        } else {
            loop.onLoop { Self.release(node, of: loop, waking: wakes) }
        }
    }

    /// On `loop`'s thread (or after its shutdown, under its late-close lock).
    private static func release(_ node: Int32, of loop: EventLoop, waking: Bool) {
        let (waker, slabShrinkable) = loop.timers.release(node)
        // A burst's timers gone, the slab's end may be: worth a look once idle.
        if slabShrinkable { loop.noteMemoryFreed() }
        if waking { waker?.wake() }
    }
}
