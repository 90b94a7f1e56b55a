import Synchronization

/// The children of a ``FutureSet`` that were woken since it last looked, and the
/// waker of the task polling the set. Shared with the children's wakers, which
/// may fire on any thread.
final class WokenChildren: Sendable {
    private struct State {
        var indices: [Int] = []
        var parent: Waker?
    }

    private let state = Mutex(State())

    /// Records that child `index` was woken and wakes the polling task.
    func push(_ index: Int) {
        let parent = state.locked { state -> Waker? in
            state.indices.append(index)
            return state.parent
        }
        parent?.wake()
    }

    /// Takes the woken indices, in wake order, and registers `parent`.
    func take(registering parent: Waker) -> [Int] {
        state.locked { state in
            state.parent.register(parent)
            defer { state.indices.removeAll(keepingCapacity: true) }
            return state.indices
        }
    }
}

/// The waker a ``FutureSet`` hands to one child: waking it queues only that child.
final class ChildWaker: Wakeable {
    let index: Int
    let woken: WokenChildren
    /// True while the child is queued in `woken`; makes repeated wakes free.
    let isQueued = Atomic<Bool>(false)

    init(index: Int, woken: WokenChildren) {
        self.index = index
        self.woken = woken
    }

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
public struct FutureSet<F: Future>: PollStream {
    private var children: [F?] = []
    private var wakers: [ChildWaker] = []
    private var freeSlots: [Int] = []
    private let woken = WokenChildren()
    /// Woken children taken from `woken` but not yet polled.
    private var backlog: [Int] = []
    private var backlogPosition = 0
    /// Children still running.
    public private(set) var count = 0

    /// An empty set.
    public init() {}

    /// A set of `futures`, to be polled in order at first.
    public init<S: Sequence<F>>(_ futures: S) {
        for future in futures { insert(future) }
    }

    /// Whether no child is running.
    public var isEmpty: Bool { count == 0 }

    /// Adds a future; it is polled at the set's next poll. Returns its slot,
    /// which ``pollNextIndexed(_:)`` reports with its output.
    @discardableResult
    public mutating func insert(_ future: F) -> Int {
        let index: Int
        if let free = freeSlots.popLast() {
            index = free
            children[index] = future
        } else {
            index = children.count
            children.append(future)
            wakers.append(ChildWaker(index: index, woken: woken))
        }
        count += 1
        wakers[index].wake()
        return index
    }

    public mutating func pollNext(_ context: inout Context) -> Poll<F.Output?> {
        pollNextIndexed(&context).map { $0?.output }
    }

    /// Like `pollNext`, also telling which slot (see ``insert(_:)``) finished.
    public mutating func pollNextIndexed(_ context: inout Context) -> Poll<(index: Int, output: F.Output)?> {
        if backlogPosition == backlog.count {
            backlog = woken.take(registering: context.waker)
            backlogPosition = 0
        }
        if count == 0 { return .ready(nil) }
        while backlogPosition < backlog.count {
            let index = backlog[backlogPosition]
            backlogPosition += 1
            let waker = wakers[index]
            waker.isQueued.store(false, ordering: .releasing)
            guard children[index] != nil else { continue }
            var childContext = Context(waker: Waker(waker))
            if case .ready(let output) = children[index]!.poll(&childContext) {
                children[index] = nil
                freeSlots.append(index)
                count -= 1
                if backlogPosition < backlog.count {
                    context.waker.wake()  // come back for the rest of the backlog
                }
                return .ready((index, output))
            }
        }
        return .pending
    }
}

/// A future of every output of a list of futures, run concurrently in one task,
/// in the list's order. Only woken children are re-polled (see ``FutureSet``).
///
/// **Cancellation:** dropping it drops every child still running.
public struct JoinAll<F: Future>: Future {
    private var set: FutureSet<F>
    private var outputs: [F.Output?]

    init(_ futures: [F]) {
        set = FutureSet(futures)
        outputs = Array(repeating: nil, count: futures.count)
    }

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
public func joinAll<F: Future>(_ futures: [F]) -> JoinAll<F> {
    JoinAll(futures)
}
