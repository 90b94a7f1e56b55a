import Synchronization

/// The children of a ``FutureSet`` that were woken since it last looked, and the
/// waker of the task polling the set. Shared with the children's wakers, which
/// may fire on any thread.
@usableFromInline
final class WokenChildren: Sendable {
    private struct State {
        var indices: [Int] = []
        var parent: Waker?
    }

    private let state = Mutex(State())
    /// Set when the set is gone (``FutureSetLifetime``): its children's
    /// wakers wake nothing that still waits.
    @usableFromInline let isSetDropped = Atomic<Bool>(false)
    /// Whether a child was woken since the last take: read without the lock.
    @usableFromInline let hasWoken = Atomic<Bool>(false)

    @usableFromInline
    init() {}

    /// Records that child `index` was woken and wakes the polling task.
    ///
    /// Only the first push since the last `take` wakes it: the later ones find
    /// it woken already, and it takes them all at once.
    @usableFromInline
    func push(_ index: Int) {
        let parent = state.locked { state -> Waker? in
            state.indices.append(index)
            guard state.indices.count == 1 else { return nil }
            hasWoken.store(true, ordering: .releasing)
            return state.parent
        }
        parent?.wake()
    }

    /// The indices woken since the last take, in wake order, left in place.
    @usableFromInline
    func peek() -> [Int] {
        state.locked { $0.indices }
    }

    /// Swaps the woken indices, in wake order, into `taken` (whose old contents
    /// are dropped; swapping, not copying, so neither array reallocates), and
    /// registers `parent`.
    @usableFromInline
    func take(into taken: inout [Int], registering parent: Waker) {
        taken.removeAll(keepingCapacity: true)
        state.locked { state in
            state.parent.register(parent)
            swap(&state.indices, &taken)
            hasWoken.store(false, ordering: .relaxed)
        }
    }
}

/// Marks the set's children's wakers finished when the set goes: the one
/// object only the set (and its copies) holds.
@usableFromInline
final class FutureSetLifetime {
    @usableFromInline let woken: WokenChildren

    @usableFromInline
    init(_ woken: WokenChildren) { self.woken = woken }

    deinit { woken.isSetDropped.store(true, ordering: .releasing) }
}

/// The waker a ``FutureSet`` hands to one child: waking it queues only that child.
///
/// It tells a waiting list when waking it no longer matters (its child
/// finished, or the set is gone), as a task's waker does: such wakers are
/// all kept, not evicted past the list's limit, so more than 256 children
/// waiting on one receiver do not evict each other round and round (each
/// evicted child was polled, registered again and evicted the next; the
/// loop never went idle).
@usableFromInline
final class ChildWaker: FinishableWakeable {
    @usableFromInline let index: Int
    @usableFromInline let woken: WokenChildren
    /// True while the child is queued in `woken`; makes repeated wakes free.
    @usableFromInline let isQueued = Atomic<Bool>(false)
    /// True once the child in this slot finished (false again when the slot
    /// takes a new child).
    @usableFromInline let isChildDone = Atomic<Bool>(false)

    var isFinished: Bool {
        isChildDone.load(ordering: .relaxed) || woken.isSetDropped.load(ordering: .acquiring)
    }

    @usableFromInline
    init(index: Int, woken: WokenChildren) {
        self.index = index
        self.woken = woken
    }

    @usableFromInline
    func wake() {
        if !isQueued.exchange(true, ordering: .acquiringAndReleasing) {
            woken.push(index)
        }
    }
}

/// A set of futures of one type, run concurrently in the polling task, yielding
/// their outputs in completion order: futures-rs's `FuturesUnordered`.
///
/// Each child gets its own waker, so a poll of the set polls only the children
/// that were woken since the last one (plus newly inserted ones), however many
/// are pending. `pollNext` returns `nil` when the set is empty.
///
/// **Cancellation:** dropping the set drops every child still running.
///
/// Inlinable, so that it is specialised for its child type where it is used
/// (a generic set pays a metadata lookup per call; docs/BENCHMARKS.md,
/// "Combinators").
public struct FutureSet<F: Future>: PollStream {
    @usableFromInline var children: [F?] = []
    @usableFromInline var wakers: [ChildWaker] = []
    @usableFromInline var freeSlots: [Int] = []
    /// Shared with the children's wakers, and with copies of the set until
    /// they are polled (``ownSharedState()``).
    @usableFromInline var woken: WokenChildren
    @usableFromInline var lifetime: FutureSetLifetime
    /// Woken children taken from `woken` but not yet polled.
    @usableFromInline var backlog: [Int] = []
    @usableFromInline var backlogPosition = 0
    /// Children inserted while `backlog` was used up: they join it at the next
    /// take. An insert costs no lock and no wake this way (docs/BENCHMARKS.md,
    /// "Combinators").
    @usableFromInline var inserted: [Int] = []
    /// The waker of the latest poll: the first insert after a poll wakes it,
    /// as a woken child would.
    @usableFromInline var parent: Waker?
    /// Children still running.
    @usableFromInline var running = 0

    /// Children still running.
    @inlinable
    public var count: Int { running }

    /// An empty set.
    @inlinable
    public init() {
        woken = WokenChildren()
        lifetime = FutureSetLifetime(woken)
    }

    /// A set of `futures`, to be polled in order at first.
    @inlinable
    public init<S: Sequence<F>>(_ futures: S) {
        self.init()
        for future in futures { insert(future) }
    }

    /// Whether no child is running.
    @inlinable
    public var isEmpty: Bool { count == 0 }

    /// Adds a future; it is polled at the set's next poll. Returns its slot,
    /// which ``pollNextIndexed(_:)`` reports with its output.
    @inlinable
    @discardableResult
    public mutating func insert(_ future: F) -> Int {
        let index = occupySlot(with: future)
        queueInserted(index)
        return index
    }

    /// Adds a future that is given its waker now rather than at a poll: a
    /// spawned task's handle, which runs apart from the set. `register` hands
    /// the future the slot's waker and returns whether it is ready already
    /// (then it is polled at the set's next poll, as an inserted one).
    /// Otherwise the set polls it when it wakes that waker, in the order the
    /// children woke: tasks that finish before the set's next poll come out
    /// in the order they finished, not in the order they were added.
    @usableFromInline
    mutating func insert(_ future: F, registering register: (Waker) -> Bool) -> Int {
        let index = occupySlot(with: future)
        if register(Waker(wakers[index])) { queueInserted(index) }
        return index
    }

    /// Puts `future` in a free slot, or a new one, with a waker unqueued.
    @inlinable
    mutating func occupySlot(with future: F) -> Int {
        let index: Int
        if let free = freeSlots.popLast() {
            index = free
            children[index] = future
        } else {
            index = children.count
            children.append(future)
            wakers.append(ChildWaker(index: index, woken: woken))
        }
        running += 1
        wakers[index].isChildDone.store(false, ordering: .relaxed)
        wakers[index].isQueued.store(false, ordering: .relaxed)
        return index
    }

    /// Queues the child in slot `index` for the set's next poll.
    @inlinable
    mutating func queueInserted(_ index: Int) {
        // Queued by hand: wakes before its first poll are free, as for a
        // woken child.
        wakers[index].isQueued.store(true, ordering: .relaxed)
        if backlogPosition < backlog.count {
            backlog.append(index)  // this poll's backlog (whose poll arranged a wake) takes it
        } else {
            if inserted.isEmpty { parent?.wake() }
            inserted.append(index)
        }
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<F.Output?> {
        pollNextIndexed(&context).map { $0?.output }
    }

    /// Like `pollNext`, also telling which slot (see ``insert(_:)``) finished.
    @inlinable
    public mutating func pollNextIndexed(_ context: inout Context) -> Poll<(index: Int, output: F.Output)?> {
        var tookWoken = false
        /// Whether a child was woken during its own poll (a yield).
        var yielded = false
        if backlogPosition == backlog.count {
            takeWoken(registering: context.waker)
            tookWoken = true
        }
        if count == 0 { return .ready(nil) }
        while true {
            while backlogPosition < backlog.count {
                let index = backlog[backlogPosition]
                backlogPosition += 1
                let waker = wakers[index]
                waker.isQueued.store(false, ordering: .releasing)
                guard children[index] != nil else { continue }
                var childContext = Context(waker: Waker(waker))
                if case .ready(let output) = children[index]!.poll(&childContext) {
                    waker.isChildDone.store(true, ordering: .relaxed)
                    children[index] = nil
                    freeSlots.append(index)
                    running -= 1
                    if running == 0 && children.count > 1024 { startAfresh() }
                    if backlogPosition < backlog.count {
                        context.waker.wake()  // come back for the rest of the backlog
                    }
                    return .ready((index, output))
                }
                if waker.isQueued.load(ordering: .relaxed) { yielded = true }
                // The budget spent (a child that takes it all at every poll),
                // the children after it would only yield: they go first at
                // the next poll, with a fresh budget, before the ones woken
                // since (in wake order, the spender came first every time).
                if Budget.isSpent && backlogPosition < backlog.count {
                    context.waker.wake()
                    return .pending
                }
            }
            // A poll that began on an earlier poll's backlog has not given the
            // woken children its waker (the earlier poll's may be another, a
            // finished one), and a child woken since may have spent its wake
            // on that poll's own wake: take them now, once, before waiting.
            // (Neither the case, nothing to take: a child woken after this
            // check is the first since the take, and wakes this waker.)
            if tookWoken { return .pending }
            // A child that woke itself during its poll (a `yieldNow`) asked
            // for a turn for the others first: taken now, it would be polled
            // again at once. Come back for it (futures-rs's `yielded`).
            if yielded {
                context.waker.wake()
                return .pending
            }
            if !woken.hasWoken.load(ordering: .acquiring), parent?.willWake(context.waker) == true {
                return .pending
            }
            // Out of budget, the children taken now would only yield again
            // (thousands of them, each polled for nothing): come back for them.
            guard Budget.consume() else {
                context.waker.wake()
                return .pending
            }
            takeWoken(registering: context.waker)
            tookWoken = true
        }
    }

    /// Gives back the slots a burst of children made the set grow to, once
    /// the last has finished (the arrays kept them, and their wakers, for the
    /// set's life: a server's `forEachConcurrent` after 100,000 connections
    /// held megabytes). The wake state is new too: a finished child's waker
    /// that something still holds wakes the old one, which nobody reads, so
    /// no stale slot number reaches the new arrays.
    @usableFromInline
    mutating func startAfresh() {
        children = []
        wakers = []
        freeSlots = []
        backlog = []
        backlogPosition = 0
        inserted = []
        woken = WokenChildren()
        lifetime = FutureSetLifetime(woken)
    }

    /// Gives this set wake state of its own if a copy of it shares it (a set,
    /// or a `joinAll` or `bufferUnordered` over one, copied before it was
    /// polled): copies polled at once would take each other's wakes, and a
    /// child whose wake the other copy took stayed queued there, never polled
    /// again. Every child is then queued, to be polled with its new waker:
    /// those woken first, in the order they were woken.
    @inlinable
    mutating func ownSharedState() {
        guard !isKnownUniquelyReferenced(&lifetime) else { return }
        let wokenFirst = backlog[backlogPosition...] + woken.peek() + inserted
        let woken = WokenChildren()
        self.woken = woken
        lifetime = FutureSetLifetime(woken)
        wakers = wakers.indices.map { ChildWaker(index: $0, woken: woken) }
        backlog.removeAll()
        backlogPosition = 0
        parent = nil
        inserted.removeAll()
        for index in wokenFirst + children.indices where children[index] != nil && !wakers[index].isQueued.load(ordering: .relaxed) {
            wakers[index].isQueued.store(true, ordering: .relaxed)
            inserted.append(index)
        }
        for index in freeSlots { wakers[index].isChildDone.store(true, ordering: .relaxed) }
    }

    /// Makes the children woken since the last take, and those inserted, the
    /// backlog, and registers `waker` for the next wake.
    @inlinable
    mutating func takeWoken(registering waker: Waker) {
        ownSharedState()  // here, once per batch of wakes, not per poll or insert
        woken.take(into: &backlog, registering: waker)
        parent.register(waker)
        if !inserted.isEmpty {
            backlog.append(contentsOf: inserted)
            inserted.removeAll(keepingCapacity: true)
        }
        backlogPosition = 0
    }
}

extension FutureSet {
    /// Inserts `make(element)` for each element `stream` has ready while fewer
    /// than `limit` children run; true once the stream has ended. What every
    /// "up to `limit` at once" combinator does before polling its set.
    @inlinable
    mutating func fill<S: PollStream>(
        from stream: inout S, limit: Int, _ context: inout Context, _ make: (S.Element) -> F
    ) -> Bool {
        while count < limit {
            switch stream.pollNext(&context) {
            case .pending: return false
            case .ready(nil): return true
            case .ready(let element?): insert(make(element))
            }
        }
        return false
    }
}

/// A future of every output of a list of futures, run concurrently in one task,
/// in the list's order. Only woken children are re-polled (see ``FutureSet``).
///
/// **Cancellation:** dropping it drops every child still running.
public struct JoinAll<F: Future>: Future {
    @usableFromInline var set: FutureSet<F>
    @usableFromInline var outputs: [F.Output?]

    @inlinable
    init(_ futures: [F]) {
        set = FutureSet(futures)
        outputs = Array(repeating: nil, count: futures.count)
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<[F.Output]> {
        while true {
            switch set.pollNextIndexed(&context) {
            case .pending:
                return .pending
            case .ready(let finished?):
                outputs[finished.index] = finished.output
            case .ready(nil):
                return .ready(outputs.map { $0! })
            }
        }
    }
}

/// Runs every future in `futures` concurrently in the current task; ready with
/// their outputs in the same order.
@inlinable
public func joinAll<F: Future>(_ futures: [F]) -> JoinAll<F> {
    JoinAll(futures)
}
