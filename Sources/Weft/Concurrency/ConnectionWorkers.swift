import CLibUV
import Synchronization

/// The tasks that run one server's handler on one loop
/// (``LoopGroup/serve(_:distribution:backlog:handler:)``), each kept, once its
/// handler returns, to run the handler for a later connection. Starting a Swift
/// task and ending it (its creation, its executor-preference record, its
/// task-local bindings, its completion and deallocation) was about a sixth of
/// the async echo's user time per connection in churn (4.96 -> 4.13 µs with the
/// tasks kept; docs/BENCHMARKS-HISTORY.md, "Nineteenth session"); a task waiting for
/// its next connection is woken as it would be by a read.
///
/// At most ``idleLimit`` tasks wait at once; a task that finds that many
/// waiting ends, so a burst of connections leaves at most that many tasks
/// behind. ``close()`` ends the waiting tasks and every task whose handler
/// returns after it; the loop's shutdown cancels them all (they are the loop's
/// spawned tasks).
///
/// A connection's task is one of these, not a task of its own: a handler sees
/// the same `withUnsafeCurrentTask` as the connection before it on that task,
/// and task-local values it binds with `withValue` are unbound when it returns,
/// as always. A handler whose task was cancelled (the loop's shutdown) ends its
/// task rather than passing it on.
final class ConnectionWorkers: Sendable {
    /// The most tasks kept waiting for a connection.
    static let idleLimit = 64

    /// A connection for a waiting task: accepted on its loop, or a socket
    /// handed over from another loop (adopted by the task that takes it).
    enum Delivery: Sendable {
        case stream(TCPStream)
        case descriptor(Int32)
    }

    private struct State {
        /// The tasks waiting for a connection, the one that waited least last.
        var idle: [Mailbox] = []
        var isClosed = false
    }

    let loop: LoopThread
    let handler: ConnectionHandler
    /// Connections given to these workers so far (``GroupServer/connectionsPerLoop``).
    let started = Atomic<Int>(0)
    /// Handlers that threw (``GroupServer/handlerFailures``).
    let failed = Atomic<Int>(0)
    /// The connections given to these workers and not yet finished: counted
    /// from ``start(_:)`` (a connection handed to a busy loop is live before
    /// its handler starts) until its handler returns, or until it is closed
    /// unserved. Closed by ``GroupServer/close()``; what
    /// ``GroupServer/waitForConnections()`` waits for. One per loop, so that
    /// the loops of a group share no lock per connection.
    let live = TaskTracker()
    private let state = Mutex(State())

    init(loop: LoopThread, handler: @escaping ConnectionHandler) {
        self.loop = loop
        self.handler = handler
    }

    /// Runs the handler for `connection`; an error it throws is counted and
    /// reported (``handlerFailed(_:)``). On the caller's executor (the worker
    /// task's loop). Not inlined: inlined, its error handling grew the worker
    /// closure's frame, which an idle connection's task holds, from 96 to 208
    /// bytes.
    @inline(never)
    nonisolated(nonsending)
    func serve(_ connection: TCPStream) async {
        do {
            try await handler(connection)
        } catch {
            handlerFailed(error)
        }
        live.leave()
    }

    /// Counts and reports (``RuntimeEvent/connectionHandlerFailed(_:)``) an
    /// error a handler threw, unless its task was cancelled: only the loop's
    /// shutdown cancels these tasks, and a handler it ended is no failure,
    /// whatever it threw (a `CancellationError`, or, from an await the
    /// cancellation did not reach that ran on past the grace second, the
    /// `.closed` of the socket the shutdown closed). A `CancellationError` a
    /// handler throws while its task is not cancelled (say, from an await on
    /// another loop that shut down) is counted. Synchronous and not inlined,
    /// so that it takes nothing from the task's stack, which an idle
    /// connection holds.
    @inline(never)
    private func handlerFailed(_ error: any Error) {
        if Task.isCancelled { return }
        failed.add(1, ordering: .relaxed)
        RuntimeEvents.report(.connectionHandlerFailed("\(error)"))
    }

    /// Runs the handler for `delivery` in a waiting task, or in a new one if
    /// none waits. Any thread.
    func start(_ delivery: Delivery) {
        started.add(1, ordering: .relaxed)
        live.enter()
        while let mailbox = state.locked({ $0.idle.popLast() }) {
            // Refused when its task ended since it waited: try the next.
            if mailbox.deliver(delivery) { return }
        }
        loop.spawn(worker: self, first: delivery)
    }

    /// Ends the waiting tasks, and every task whose handler returns from now
    /// on. Idempotent.
    func close() {
        let waiting = state.locked { state -> [Mailbox] in
            state.isClosed = true
            let waiting = state.idle
            state.idle = []
            return waiting
        }
        for mailbox in waiting { mailbox.close() }
    }

    /// The next connection for `mailbox`'s task (see
    /// ``LoopThread/spawn(worker:first:)``): the one it was started for, else the
    /// next handed to it once it waits; nil when it should end instead
    /// (closed, enough tasks waiting, or the task cancelled). Not inlined: its
    /// frame exists only between connections, so a connection's task holds no
    /// more frames while its handler runs than a task of its own would.
    @inline(never)
    nonisolated(nonsending)
    func next(for mailbox: Mailbox) async -> TCPStream? {
        while true {
            if !mailbox.hasDelivery {
                let waits = state.locked { state -> Bool in
                    guard !state.isClosed, state.idle.count < Self.idleLimit else { return false }
                    state.idle.append(mailbox)
                    return true
                }
                guard waits, !Task.isCancelled else { break }
            }
            // nil: closed, or the task cancelled (the await throws).
            guard let delivery = try? await awaitValue(transferring: UnsafeTransfer(value: NextDelivery(mailbox: mailbox))).value
            else { break }
            switch delivery {
            case .stream(let connection):
                return connection
            case .descriptor(let descriptor):
                // Fails only out of memory (the socket is closed then): wait again.
                if let connection = try? TCPStream(adopting: descriptor) { return connection }
                live.leave()
            }
        }
        forget(mailbox)
        return nil
    }

    /// `mailbox`'s task ends: it no longer waits, and a connection handed to it
    /// in the meantime (a race with a cancellation) is closed.
    private func forget(_ mailbox: Mailbox) {
        state.locked { $0.idle.removeAll { $0 === mailbox } }
        mailbox.close()
    }

    /// Where one task receives its next connection.
    final class Mailbox: Sendable {
        private struct Slot {
            var delivery: Delivery?
            var isClosed = false
            var waker: Waker?
        }

        private let slot: Mutex<Slot>
        /// The workers whose task this is.
        let workers: ConnectionWorkers
        /// The task's number among its loop's spawned tasks.
        let taskID: Int

        init(_ first: Delivery, workers: ConnectionWorkers, taskID: Int) {
            slot = Mutex(Slot(delivery: first))
            self.workers = workers
            self.taskID = taskID
        }

        /// Whether a connection waits to be taken (only the first, before the
        /// task took it: one is handed only to a task that waits).
        var hasDelivery: Bool { slot.locked { $0.delivery != nil } }

        /// Hands `delivery` to the task; false, keeping nothing, when the task
        /// has ended (``close()`` came first: a connection left here would be
        /// taken by nobody, a handed-over descriptor never closed).
        func deliver(_ delivery: Delivery) -> Bool {
            let (isTaken, waker) = slot.locked { slot -> (Bool, Waker?) in
                guard !slot.isClosed else { return (false, nil) }
                slot.delivery = delivery
                return (true, slot.waker.take())
            }
            waker?.wake()
            return isTaken
        }

        /// No more connections; one delivered and not taken is closed (and
        /// no longer live).
        func close() {
            let (waker, left) = slot.locked { slot -> (Waker?, Delivery?) in
                slot.isClosed = true
                return (slot.waker.take(), slot.delivery.take())
            }
            waker?.wake()
            guard let left else { return }
            switch left {
            case .stream(let connection): connection.close()
            case .descriptor(let descriptor): weft_close(descriptor)
            }
            workers.live.leave()
        }

        /// A task that never ran (its loop gone before it started) leaves its
        /// first connection here: closed, not leaked.
        deinit { close() }

        /// The delivered connection, nil once closed, or pending with `waker` kept.
        func take(waker: Waker) -> Poll<Delivery?> {
            slot.locked { slot in
                if let delivery = slot.delivery.take() { return .ready(delivery) }
                if slot.isClosed { return .ready(nil) }
                slot.waker = waker
                return .pending
            }
        }
    }

    /// The next connection of one task's mailbox, or nil once it is closed.
    struct NextDelivery: Future {
        let mailbox: Mailbox

        mutating func poll(_ context: inout Context) -> Poll<Delivery?> {
            mailbox.take(waker: context.waker)
        }
    }
}
