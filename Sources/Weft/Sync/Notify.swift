import Synchronization

/// Wakes tasks waiting for an event (Tokio's `Notify`).
///
/// ``notifyOne()`` wakes the longest-waiting ``notified()`` future, or, when
/// none waits, stores one notification for the next one (at most one is
/// stored). ``notifyWaiters()`` wakes every ``notified()`` future created before
/// the call — polled yet or not — and stores nothing. Usable from any thread.
///
/// ```swift
/// let ready = Notify()
/// runtime.spawn(ready.notified().map { print("go") })
/// ready.notifyOne()
/// ```
///
/// **Cancellation:** cancel-safe in the sense that nothing is lost: dropping a
/// pending ``notified()`` future takes it out of the queue, and if a
/// ``notifyOne()`` had already picked it, the notification is passed on to the
/// next waiter (or stored) instead of vanishing.
public final class Notify: Sendable {
    enum WaitState {
        case waiting
        /// Picked by `notifyOne`: must be consumed or passed on.
        case notifiedOne
        /// Woken by `notifyWaiters`.
        case notifiedAll
    }

    struct State {
        var waiters = WaitList<WaitState>()
        /// A `notifyOne` that found nobody waiting.
        var hasStoredNotification = false
        /// A settled waiter kept for the next ``Notified`` that has to wait, so
        /// a steady wait/notify loop allocates nothing.
        var spare: NotifyWaiter?
    }

    let state = Locked(State())
    /// Incremented, under the lock, by every `notifyWaiters`; read without it
    /// when a ``Notified`` is created.
    let generation = Atomic<UInt64>(0)

    public init() {}

    /// Wakes one waiter, or stores a notification for the next.
    public func notifyOne() {
        state.withLock { state in Self.notifyOne(&state) }?.wake()
    }

    private static func notifyOne(_ state: inout State) -> Waker? {
        if let node = state.waiters.popFirst() {
            node.payload = .notifiedOne
            return node.waker.take()
        }
        state.hasStoredNotification = true
        return nil
    }

    /// Wakes every ``notified()`` future created before this call.
    public func notifyWaiters() {
        let wakers = state.withLock { state -> [Waker] in
            generation.add(1, ordering: .relaxed)
            return state.waiters.removeAll().compactMap { node in
                node.payload = .notifiedAll
                return node.waker.take()
            }
        }
        wakeAll(wakers)
    }

    /// A future ready at the next notification.
    public func notified() -> Notified {
        Notified(notify: self, generation: generation.load(ordering: .relaxed))
    }

    /// Waits for a notification, from `async` code.
    ///
    /// **Cancellation:** see the type; throws `CancellationError`.
    nonisolated(nonsending)
    public func notified() async throws(CancellationError) {
        _ = try await Weft.value(transferring: Transfer(value: notified() as Notified))
    }

    /// A dropped waiter: leave the queue, or pass on a notification it was given.
    fileprivate func cancel(_ node: WaitNode<WaitState>) {
        let waker = state.withLock { state -> Waker? in
            node.waker = nil
            switch node.payload {
            case .waiting:
                state.waiters.remove(node)
                return nil
            case .notifiedOne:
                node.payload = .notifiedAll  // consumed by passing it on
                return Self.notifyOne(&state)
            case .notifiedAll:
                return nil
            }
        }
        waker?.wake()
    }
}

/// The future returned by ``Notify/notified()``.
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
        if waiter != nil {
            // A copy of this future may share the waiter; only a sole owner recycles it.
            let canRecycle = isKnownUniquelyReferenced(&waiter)
            let waiter = self.waiter!
            let ready = notify.state.withLock { state -> Bool in
                if case .waiting = waiter.node.payload {
                    waiter.node.waker.register(context.waker)
                    return false
                }
                waiter.node.payload = .notifiedAll  // consumed
                waiter.notify = nil  // settled: its deinit has nothing to cancel
                if canRecycle && state.spare == nil { state.spare = waiter }
                return true
            }
            if ready { self.waiter = nil; isDone = true; return .ready(()) }
            return .pending
        }
        let notify = self.notify
        let generation = self.generation
        waiter = notify.state.withLock { state -> NotifyWaiter? in
            if notify.generation.load(ordering: .relaxed) != generation { return nil }
            if state.hasStoredNotification {
                state.hasStoredNotification = false
                return nil
            }
            let waiter = state.spare.take() ?? NotifyWaiter()
            waiter.notify = notify
            waiter.node.payload = .waiting
            waiter.node.waker = context.waker
            state.waiters.append(waiter.node)
            return waiter
        }
        guard waiter != nil else { isDone = true; return .ready(()) }
        return .pending
    }
}

/// A pending `Notified`'s place in the queue; its deinit is the cancellation.
///
/// Once its future has consumed a notification it is settled (`notify` is nil)
/// and may wait in ``Notify/State/spare`` for reuse. Its fields are touched
/// only under the notify's lock or by the one future that owns it.
final class NotifyWaiter {
    let node = WaitNode(Notify.WaitState.waiting)
    /// The notify whose queue `node` may be in; nil once settled.
    @exclusivity(unchecked) var notify: Notify?

    deinit { notify?.cancel(node) }
}
