/// A counting semaphore for tasks: ``acquire(_:)`` waits until enough permits
/// are free. Waiters are served strictly first come, first served: a large
/// request at the head of the queue holds back smaller ones behind it, so it is
/// never starved. Usable from any thread.
///
/// ```swift
/// let connections = AsyncSemaphore(permits: 100)
/// let permit = try await connections.acquire()   // waits while all 100 are held
/// defer { permit.release() }
/// try await sleep(for: .milliseconds(1))         // the work the permit guards
/// ```
///
/// **Cancellation:** cancel-safe: dropping a pending acquire future (or
/// cancelling `acquire`) takes it out of the queue; permits it had already been
/// granted go back to the semaphore and on to the next waiters. Nothing leaks.
public final class AsyncSemaphore: Sendable {
    struct Request {
        let permits: Int
        /// Set when the permits were taken for this waiter.
        var isGranted = false
    }

    struct State {
        var available: Int
        var waiters = WaitList<Request>()
    }

    let state: Locked<State>

    /// A semaphore with `permits` free permits. A negative count traps.
    public init(permits: Int) {
        precondition(permits >= 0, "a semaphore cannot start with negative permits")
        state = Locked(State(available: permits))
    }

    /// Permits free now.
    public var availablePermits: Int {
        state.withLock { $0.available }
    }

    /// A future of a ``SemaphorePermit`` holding `permits` permits. Fewer than
    /// one traps.
    public func acquireFuture(_ permits: Int = 1) -> SemaphoreAcquire {
        precondition(permits >= 1, "acquire at least one permit")
        return SemaphoreAcquire(semaphore: self, permits: permits)
    }

    /// Takes `permits` permits if they are free now and nobody waits ahead.
    /// Fewer than one traps, as for ``acquireFuture(_:)`` (a permit of none,
    /// or of a negative count, would make permits out of nothing).
    public func tryAcquire(_ permits: Int = 1) -> SemaphorePermit? {
        precondition(permits >= 1, "acquire at least one permit")
        let taken = state.withLock { state -> Bool in
            guard state.waiters.isEmpty, state.available >= permits else { return false }
            state.available -= permits
            return true
        }
        return taken ? SemaphorePermit(semaphore: self, permits: permits) : nil
    }

    /// Adds `permits` permits (beyond those that permit objects give back).
    /// A negative count traps: permits are taken back by acquiring them. So
    /// does a count that would make more than `Int.max` permits free (as
    /// Tokio's `add_permits` panics past its maximum).
    public func addPermits(_ permits: Int) {
        precondition(permits >= 0, "a semaphore cannot add negative permits")
        wakeAll(state.withLock { state in
            let (sum, overflow) = state.available.addingReportingOverflow(permits)
            precondition(!overflow, "a semaphore holds at most Int.max free permits")
            state.available = sum
            return Self.grant(&state)
        })
    }

    /// Hands free permits to waiters in order; returns their wakers.
    static func grant(_ state: inout State) -> [Waker] {
        var wakers: [Waker] = []
        while let first = state.waiters.first, first.payload.permits <= state.available {
            state.waiters.remove(first)
            state.available -= first.payload.permits
            first.payload.isGranted = true
            if let waker = first.waker.take() { wakers.append(waker) }
        }
        return wakers
    }

    func release(_ permits: Int) {
        addPermits(permits)
    }

    /// A dropped waiter: leave the queue (which may unblock those behind it), or
    /// give back what it was granted.
    fileprivate func cancel(_ node: WaitNode<Request>) {
        wakeAll(state.withLock { state in
            node.waker = nil
            if node.payload.isGranted {
                node.payload.isGranted = false
                state.available += node.payload.permits
            } else {
                state.waiters.remove(node)
            }
            return Self.grant(&state)
        })
    }
}

/// Permits taken from an ``AsyncSemaphore``; they go back on ``release()`` or
/// when the permit is deinitialized.
///
/// Swift may end an object's lifetime right after its last use, so a permit
/// held only to keep the semaphore taken should be released explicitly (or
/// kept alive with `withExtendedLifetime`).
public final class SemaphorePermit: Sendable {
    let semaphore: AsyncSemaphore
    /// How many permits are held; 0 once released.
    private let held: Locked<Int>

    init(semaphore: AsyncSemaphore, permits: Int) {
        self.semaphore = semaphore
        held = Locked(permits)
    }

    /// How many permits this holds (0 after ``release()``).
    public var permits: Int { held.withLock { $0 } }

    /// Gives the permits back now. Idempotent.
    public func release() {
        let permits = held.withLock { held -> Int in
            defer { held = 0 }
            return held
        }
        if permits > 0 { semaphore.release(permits) }
    }

    deinit { release() }
}

/// The future returned by ``AsyncSemaphore/acquireFuture(_:)``.
///
/// Poll it from one task: a copy made after its first poll shares its place
/// in the queue, so one copy gets the permits and the other waits for ever.
/// Make an acquire per task instead.
///
/// **Cancellation:** see ``AsyncSemaphore``.
public struct SemaphoreAcquire: Future {
    let semaphore: AsyncSemaphore
    let permits: Int
    var waiter: SemaphoreWaiter?

    public mutating func poll(_ context: inout Context) -> Poll<SemaphorePermit> {
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        if let waiter {
            let node = waiter.node
            let granted = semaphore.state.withLock { state -> Bool in
                if node.payload.isGranted {
                    node.payload.isGranted = false  // now owned by the permit object
                    return true
                }
                node.waker.register(context.waker)
                return false
            }
            guard granted else { return Budget.refundingIfPending(.pending) }
            self.waiter = nil
            return .ready(SemaphorePermit(semaphore: semaphore, permits: permits))
        }
        let permits = self.permits
        let node = semaphore.state.withLock { state -> WaitNode<AsyncSemaphore.Request>? in
            if state.waiters.isEmpty && state.available >= permits {
                state.available -= permits
                return nil
            }
            let node = WaitNode(AsyncSemaphore.Request(permits: permits))
            node.waker = context.waker
            state.waiters.append(node)
            return node
        }
        guard let node else { return .ready(SemaphorePermit(semaphore: semaphore, permits: permits)) }
        waiter = SemaphoreWaiter(semaphore: semaphore, node: node)
        return Budget.refundingIfPending(.pending)
    }
}

/// A pending acquire's place in the queue; its deinit is the cancellation.
final class SemaphoreWaiter {
    let semaphore: AsyncSemaphore
    let node: WaitNode<AsyncSemaphore.Request>

    init(semaphore: AsyncSemaphore, node: WaitNode<AsyncSemaphore.Request>) {
        self.semaphore = semaphore
        self.node = node
    }

    deinit { semaphore.cancel(node) }
}
