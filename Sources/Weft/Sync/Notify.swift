import Synchronization

/// Wakes tasks waiting for an event (Tokio's `Notify`).
///
/// ``notifyOne()`` wakes the longest-waiting ``notified()`` future, or, when
/// none waits, stores one notification for the next one (at most one is
/// stored). ``notifyWaiters()`` wakes every ``notified()`` future created before
/// the call — polled yet or not — and stores nothing. Usable from any thread.
///
/// ```swift
/// let runtime = try Runtime()
/// let ready = Notify()
/// let waiter = runtime.spawn(ready.notifiedFuture().map { print("go") })
/// ready.notifyOne()
/// try runtime.block(on: waiter).get()   // prints "go"
/// ```
///
/// **Cancellation:** cancel-safe in the sense that nothing is lost: dropping a
/// pending ``notifiedFuture()`` future takes it out of the queue, and if a
/// ``notifyOne()`` had already picked it, the notification is passed on to the
/// next waiter (or stored) instead of vanishing.
///
/// `@unchecked Sendable` is sound because every mutable field below `lock` is
/// read and written only while `lock` is held (the mutex orders one holder's
/// writes before the next holder's reads), and the other two are atomics.
public final class Notify: @unchecked Sendable {
    /// Guards `queue`, `hasStoredNotification`, and every queued waiter's
    /// links and waker.
    private let lock = Mutex<Void>(())
    /// The waiting queue, oldest first. Its links are unretained: a waiter is
    /// owned by its future, whose drop (the waiter's deinit) unlinks it under
    /// the lock, so a linked waiter is always alive.
    @exclusivity(unchecked) private var queue = IntrusiveList<NotifyWaiter>()
    /// A `notifyOne` that found nobody waiting.
    @exclusivity(unchecked) private var hasStoredNotification = false
    /// Incremented, under the lock, by every `notifyWaiters`; read without it
    /// when a ``Notified`` is created.
    private let generation = Atomic<UInt64>(0)
    /// A settled waiter kept (retained) for the next ``Notified`` that has to
    /// wait, so a steady wait/notify loop allocates nothing. An atomic slot, so
    /// giving a waiter back needs no lock.
    private let spare = Atomic<Unmanaged<NotifyWaiter>?>(nil)

    /// A notify with nobody waiting and no notification stored.
    public init() {}

    deinit {
        // No waiter is queued or picked: each would keep this notify alive.
        spare.exchange(nil, ordering: .acquiring)?.release()
    }

    /// Wakes one waiter, or stores a notification for the next.
    public func notifyOne() {
        lock.locked { _ in notifyOneLocked() }?.wake()
    }

    /// Hands the notification to the oldest waiter and returns its waker, or
    /// stores it. Call with the lock held.
    private func notifyOneLocked() -> Waker? {
        guard !queue.isEmpty else {
            hasStoredNotification = true
            return nil
        }
        return dequeueFirst(as: NotifyWaiter.notifiedOne)
    }

    /// Takes the oldest waiter out of the queue, marks it `state`, and returns
    /// its waker. Call with the lock held and the queue not empty.
    private func dequeueFirst(as state: UInt8) -> Waker? {
        queue.popFirst()!._withUnsafeGuaranteedRef { waiter in
            let waker = waiter.waker.take()
            // The last touch of the waiter: from here its future owns it.
            waiter.state.store(state, ordering: .releasing)
            return waker
        }
    }

    /// Wakes every ``notified()`` future created before this call.
    public func notifyWaiters() {
        let wakers = lock.locked { _ -> [Waker] in
            generation.add(1, ordering: .relaxed)
            var wakers: [Waker] = []
            while !queue.isEmpty {
                if let waker = dequeueFirst(as: NotifyWaiter.notifiedAll) { wakers.append(waker) }
            }
            return wakers
        }
        wakeAll(wakers)
    }

    /// A future ready at the next notification.
    ///
    /// The generation is read acquiring: a relaxed read may be done after a
    /// lock the caller takes next (`TaskTracker`'s wait reads its count
    /// under one), and so see a notification that came after what it reads
    /// there; the future then waited for the one after, which might never come.
    public func notifiedFuture() -> Notified {
        Notified(notify: self, generation: generation.load(ordering: .acquiring))
    }

    // MARK: - For Notified

    /// Queues `waiter` (a spare one, or a new one) with `waker`, unless a
    /// notification is already there for a future of `generation`: then
    /// consumes it and returns nil.
    fileprivate func wait(generation: UInt64, waker: Waker) -> NotifyWaiter? {
        lock.locked { _ -> NotifyWaiter? in
            if self.generation.load(ordering: .relaxed) != generation { return nil }
            if hasStoredNotification {
                hasStoredNotification = false
                return nil
            }
            let waiter = spare.exchange(nil, ordering: .acquiring)?.takeRetainedValue() ?? NotifyWaiter()
            waiter.state.store(NotifyWaiter.waiting, ordering: .relaxed)
            waiter.notify = self
            waiter.waker = waker
            queue.append(waiter)
            return waiter
        }
    }

    /// Replaces a still-queued waiter's waker; false when it was notified
    /// meanwhile.
    fileprivate func rewait(_ waiter: NotifyWaiter, waker: Waker) -> Bool {
        lock.locked { _ -> Bool in
            guard waiter.state.load(ordering: .relaxed) == NotifyWaiter.waiting else { return false }
            waiter.waker.register(waker)
            return true
        }
    }

    /// Keeps a settled waiter for reuse, unless one is kept already.
    fileprivate func recycle(_ waiter: NotifyWaiter) {
        let retained = Unmanaged.passRetained(waiter)
        let (exchanged, _) = spare.compareExchange(
            expected: nil, desired: retained, ordering: .acquiringAndReleasing)
        if !exchanged { retained.release() }
    }

    /// A dropped waiter: leave the queue, or pass on a notification it was given.
    fileprivate func cancel(_ waiter: NotifyWaiter) {
        let waker = lock.locked { _ -> Waker? in
            waiter.waker = nil
            switch waiter.state.load(ordering: .relaxed) {
            case NotifyWaiter.waiting:
                queue.remove(waiter)
                return nil
            case NotifyWaiter.notifiedOne:
                waiter.state.store(NotifyWaiter.notifiedAll, ordering: .relaxed)  // consumed by passing it on
                return notifyOneLocked()
            default:
                return nil
            }
        }
        waker?.wake()
    }
}

/// The future returned by ``Notify/notifiedFuture()``.
///
/// Poll it from one task: a copy made after its first poll shares its place
/// among the waiters, and only the task that polled last is woken. Make a
/// `notifiedFuture()` per task instead.
///
/// **Cancellation:** see ``Notify``.
public struct Notified: Future {
    let notify: Notify
    /// `notifyWaiters` calls seen when the future was created.
    let generation: UInt64
    var waiter: NotifyWaiter?
    var isDone = false

    init(notify: Notify, generation: UInt64) {
        self.notify = notify
        self.generation = generation
    }

    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        precondition(!isDone, "Notified polled after it completed")
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        if waiter == nil {
            waiter = notify.wait(generation: generation, waker: context.waker)
            if waiter != nil { return Budget.refundingIfPending(.pending) }
            isDone = true
            return .ready(())
        }
        // A copy of this future may share the waiter; only a sole owner
        // recycles it. (Asked before `waiter` below adds a reference.)
        let isSoleOwner = isKnownUniquelyReferenced(&self.waiter)
        unowned(unsafe) let waiter = self.waiter!
        // A notifier stores the state last, with release ordering, after taking
        // the waiter out of the queue; so seeing it set needs no lock.
        if waiter.state.load(ordering: .acquiring) == NotifyWaiter.waiting,
           notify.rewait(waiter, waker: context.waker) {
            return Budget.refundingIfPending(.pending)
        }
        waiter.notify = nil  // settled: its deinit has nothing to cancel
        if isSoleOwner { notify.recycle(waiter) }
        self.waiter = nil
        isDone = true
        return .ready(())
    }
}

/// A pending `Notified`'s place in the queue; its deinit is the cancellation.
///
/// Its links and waker are touched only under the notify's lock. `state` is
/// written under the lock and read by its future without it. `notify` is
/// written by the future that owns the waiter, or under the lock before the
/// waiter is handed to that future.
final class NotifyWaiter: IntrusiveListNode {
    static let waiting: UInt8 = 0
    /// Picked by `notifyOne`: must be consumed or passed on.
    static let notifiedOne: UInt8 = 1
    /// Woken by `notifyWaiters`, or a `notifyOne` already consumed.
    static let notifiedAll: UInt8 = 2

    let state = Atomic<UInt8>(NotifyWaiter.waiting)
    @exclusivity(unchecked) var waker: Waker?
    /// Unretained: see `Notify.queue`.
    @exclusivity(unchecked) var links = ListLinks<NotifyWaiter>()
    /// The notify whose queue the waiter may be in, or that picked it; nil
    /// once settled. Strong: a future's fields go in an order of their own,
    /// so its notify can go before its waiter, and a picked waiter dropped
    /// unpolled still passes its notification on through it (an unowned
    /// reference read a freed notify then).
    @exclusivity(unchecked) var notify: Notify?

    deinit { notify?.cancel(self) }
}
