/// A signal that work should stop, shared by whoever should stop together
/// (tokio-util's `CancellationToken`).
///
/// ``cancel()`` marks the token and all its descendants cancelled and wakes
/// every ``cancelled()`` future. A child token (``child()``) is cancelled with
/// its parent but cancelling the child leaves the parent alone. Usable from
/// any thread.
///
/// ```swift
/// let runtime = try Runtime()
/// let shutdown = CancellationToken()
/// let worker = shutdown.child()
/// let work = runtime.spawn(select(either: worker.cancelledFuture(), or: sleepFuture(for: .seconds(3600))))
/// shutdown.cancel()                               // cancels the child too: the select ends, the sleep is dropped
/// let outcome = try runtime.block(on: work)       // .success(.left(())), at once
/// ```
///
/// **Cancellation:** dropping a pending ``cancelledFuture()`` future removes its
/// waker; nothing else is affected. Cancelling is permanent.
public final class CancellationToken: Sendable {
    struct State {
        var isCancelled = false
        var waiters = WaitList<Void>()
        /// Children alive, cancelled in the order they were made; they
        /// remove themselves when deinitialized.
        var children = ArrivalOrdered<WeakToken>()
    }

    struct WeakToken {
        weak var token: CancellationToken?
    }

    let state = Locked(State())
    /// Held so the parent can forget this child when it goes away.
    private let parent: CancellationToken?

    /// A new, uncancelled root token.
    public init() {
        parent = nil
    }

    private init(parent: CancellationToken) {
        self.parent = parent
    }

    deinit {
        let id = ObjectIdentifier(self)
        parent?.state.withLock { _ = $0.children.remove(id) }
    }

    /// Whether ``cancel()`` was called on this token or an ancestor.
    public var isCancelled: Bool {
        state.withLock { $0.isCancelled }
    }

    /// A new token cancelled whenever this one is (at once, if it already is).
    public func child() -> CancellationToken {
        let child = CancellationToken(parent: self)
        let isCancelled = state.withLock { state -> Bool in
            if !state.isCancelled {
                state.children.update(ObjectIdentifier(child), initial: WeakToken(token: child)) { _ in }
            }
            return state.isCancelled
        }
        if isCancelled { child.cancel() }
        return child
    }

    /// Cancels this token and every descendant, waking their ``cancelled()``
    /// futures. Idempotent.
    public func cancel() {
        let (wakers, children) = state.withLock { state -> ([Waker], [CancellationToken]) in
            guard !state.isCancelled else { return ([], []) }
            state.isCancelled = true
            let wakers = state.waiters.removeAll().compactMap { $0.waker.take() }
            let children = state.children.takeAll().compactMap(\.token)
            return (wakers, children)
        }
        wakeAll(wakers)
        for child in children { child.cancel() }
    }

    /// A future ready once the token is cancelled.
    public func cancelledFuture() -> TokenCancelled {
        TokenCancelled(token: self)
    }

    fileprivate func removeWaiter(_ node: WaitNode<Void>) {
        state.withLock { state in
            state.waiters.remove(node)
            node.waker = nil
        }
    }
}

/// The future returned by ``CancellationToken/cancelledFuture()``.
///
/// Poll it from one task: a copy made after its first poll shares its waker
/// slot, and only the task that polled last is woken. Make a
/// `cancelledFuture()` per task instead.
///
/// **Cancellation:** dropping it removes its waker from the token.
public struct TokenCancelled: Future {
    let token: CancellationToken
    var waiter: TokenWaiter?

    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        let existing = waiter?.node
        let created = token.state.withLock { state -> WaitNode<Void>? in
            if state.isCancelled { return nil }
            if let existing {
                existing.waker.register(context.waker)
                return existing
            }
            let node = WaitNode(())
            node.waker = context.waker
            state.waiters.append(node)
            return node
        }
        guard let created else { waiter = nil; return .ready(()) }
        if existing == nil { waiter = TokenWaiter(token: token, node: created) }
        return .pending
    }
}

/// A pending `TokenCancelled`'s registration; its deinit removes it.
final class TokenWaiter {
    let token: CancellationToken
    let node: WaitNode<Void>

    init(token: CancellationToken, node: WaitNode<Void>) {
        self.token = token
        self.node = node
    }

    deinit { token.removeWaiter(node) }
}
