import CLibUV
import Synchronization

/// How a ``LoopGroup`` spreads the connections to one address over its loops
/// (docs/BENCHMARKS.md compares the two: within noise of each other on 2
/// cores; ``reusePort`` is the default because nothing in it crosses loops).
public enum ConnectionDistribution: Sendable {
    /// A listener on every loop, each with `SO_REUSEPORT`: the kernel gives
    /// each new connection to one of them by a hash of the client's address
    /// and port. Nothing is handed between loops, and every loop accepts; the
    /// spread is as even as the hash (binomial, not exact).
    case reusePort
    /// One listener, on the first loop, which hands each accepted socket to
    /// the loops in turn (itself included): an exact round-robin spread, paid
    /// for by the first loop (every accept, and a descriptor duplicated and a
    /// task started on the other loop for each hand-off). A loop shut down
    /// on its own (``LoopThread/shutdown()``) is skipped: its turns go to the
    /// next loop still running.
    case handOff
}

/// What ``LoopGroup/serve(_:distribution:backlog:handler:)`` runs for each
/// connection, in the connection's task. `nonisolated(nonsending)`: it runs
/// on the executor of the task that calls it (the loop), so entering it
/// switches no executor; a plain `async` closure's first step is a switch to
/// Swift's generic executor, which for a task preferring a loop reads that
/// preference under the task's status lock (once per connection). A closure
/// literal passed to `serve` takes this type; a `@concurrent` function, or a
/// closure stored with the plain `@Sendable (TCPStream) async throws -> Void`
/// type, converts to it.
public typealias ConnectionHandler = nonisolated(nonsending) @Sendable (TCPStream) async throws -> Void

extension LoopGroup {
    /// Serves `address` on every loop: each accepted connection runs
    /// `handler` in a task on the loop that owns the connection (where its
    /// reads and writes cost no hop), one connection at a time per task. An
    /// error the handler throws ends its turn, and the connection is closed
    /// when the handler lets go of it. Returns once every listener listens.
    ///
    /// Each listener hands a connection to a task as it accepts it, in its
    /// loop's readiness callback: no task takes it from the listener (one
    /// that did, and passed it on, cost two executor switches more per
    /// connection; docs/BENCHMARKS-HISTORY.md, "Twentieth session").
    ///
    /// A task whose handler returned waits for a later connection (up to 64
    /// per loop wait; more end): starting and ending a Swift task per
    /// connection cost more than handing a connection to a waiting task. So
    /// a handler may run in the task an earlier connection's handler ran in;
    /// the task-local values it binds are unbound when it returns, as always.
    /// The tasks are detached from the caller of `serve`: a handler sees none
    /// of the task-local values bound around that call (nor its priority).
    ///
    /// Port 0 picks a free port, the same for every loop (see
    /// ``GroupServer/localAddress``). The handler's tasks are the loops'
    /// spawned tasks: ``shutdown()`` cancels those still running, and
    /// ``GroupServer/close()`` ends those waiting.
    ///
    /// Fails with the bind error (`EADDRINUSE`, …), after closing the
    /// listeners already bound; with `EADDRINUSE` too when a socket listens
    /// on `address` already, even one with `SO_REUSEPORT` (``ConnectionDistribution/reusePort``
    /// would otherwise join it and take part of its connections); with
    /// `.shutDown` once the group has shut down.
    public func serve(
        _ address: SocketAddress,
        distribution: ConnectionDistribution = .reusePort,
        backlog: Int = 1024,
        handler: @escaping ConnectionHandler
    ) async throws(WeftError) -> GroupServer {
        let operation = "bind \(address)"
        if loops.contains(where: \.isStopping) {
            throw WeftError(.shutDown, operation: operation, detail: "the group was shut down; nothing would ever serve it")
        }
        let listenerLoops = distribution == .reusePort ? loops : [loops[0]]
        var listeners: [TCPListener] = []
        var bound = address
        do throws(WeftError) {
            if distribution == .reusePort && address.port != 0 {
                try StreamAcceptor.checkNotListened(address, operation: operation)
            }
            for loop in listenerLoops {
                // One hop per loop: the first listener's address (its real
                // port) is what the others bind.
                let (listener, address) = try await loop.run { [bound] () throws(WeftError) -> (TCPListener, SocketAddress) in
                    let listener = try TCPListener.bind(bound, backlog: backlog, reusePort: distribution == .reusePort)
                    do throws(WeftError) {
                        return (listener, try listener.localAddress)
                    } catch {
                        listener.close()
                        throw error
                    }
                }
                listeners.append(listener)
                bound = address
            }
        } catch {
            for listener in listeners { listener.close() }
            // A loop that stopped since the check above ran the bind where no
            // loop is ("no runtime"): what failed is the group's shutdown.
            if loops.contains(where: \.isStopping) {
                throw WeftError(.shutDown, operation: operation, detail: "a loop of the group shut down while it bound: \(error)")
            }
            throw error
        }
        let workers = loops.map { ConnectionWorkers(loop: $0, handler: handler) }
        var acceptors: [Task<Void, Error>] = []
        for (index, listener) in listeners.enumerated() {
            acceptors.append(listenerLoops[index].spawnDetached { [loops] in
                // Its loop shut down before this ran (the job runs on the
                // orphaned-jobs queue, another thread): nothing will accept on
                // the listener, which the shutdown (it closes no listener)
                // left in the port's group, taking its share of connections.
                guard listener.acceptor.loop.isOnLoopThread else { return listener.close() }
                // Connections go to the workers as they are accepted (those
                // that came before this ran waited in the listener's queue).
                var turn = 0
                listener.acceptor.deliver { accepted in
                    let target = distribution == .reusePort ? index : Self.running(from: turn, of: workers, else: index)
                    turn = (turn + 1) % loops.count
                    Self.start(accepted, with: workers[target], acceptedBy: workers[index])
                }
                // Then this task only waits: `close()` ends the accept, and
                // the loop's shutdown cancels it; either way the port closes.
                defer { listener.close() }
                _ = try? await listener.accept()
            })
        }
        return GroupServer(localAddress: bound, distribution: distribution, listeners: listeners,
                           acceptors: acceptors, workers: workers)
    }

    /// The index of the first of `workers` from `first` on (wrapping around)
    /// whose loop is not stopping, else `home`: a connection handed to a
    /// stopped loop would be closed unserved.
    private static func running(from first: Int, of workers: [ConnectionWorkers], else home: Int) -> Int {
        var index = first
        for _ in 0..<workers.count {
            if !workers[index].loop.isStopping { return index }
            index = (index + 1) % workers.count
        }
        return home
    }

    /// Runs the handler for `connection` in one of `target`'s tasks, handing
    /// the socket over when their loop is not `home`'s, the loop that
    /// accepted it; served by `home` if the hand-off fails.
    private static func start(_ connection: StreamConnection, with target: ConnectionWorkers, acceptedBy home: ConnectionWorkers) {
        guard target !== home, let descriptor = try? connection.detachDescriptor() else {
            // Served where it was accepted (also when the hand-off failed: the
            // connection is still open here).
            home.start(.stream(TCPStream(connection: connection)))
            return
        }
        target.start(.descriptor(descriptor))
    }
}

/// One address served on every loop of a ``LoopGroup``; see
/// ``LoopGroup/serve(_:distribution:backlog:handler:)``.
///
/// Dropping it changes nothing, as dropping a `Task` handle does not: it
/// serves until ``close()`` or its group's shutdown, and its loops run on
/// meanwhile. Keep it to close it.
public final class GroupServer: Sendable {
    /// The address every listener is bound to (with the real port when port 0
    /// was asked for).
    public let localAddress: SocketAddress
    /// How the connections are spread over the loops.
    public let distribution: ConnectionDistribution
    private let listeners: [TCPListener]
    private let acceptors: [Task<Void, Error>]
    private let workers: [ConnectionWorkers]

    init(localAddress: SocketAddress, distribution: ConnectionDistribution, listeners: [TCPListener],
         acceptors: [Task<Void, Error>], workers: [ConnectionWorkers]) {
        self.localAddress = localAddress
        self.distribution = distribution
        self.listeners = listeners
        self.acceptors = acceptors
        self.workers = workers
    }

    /// How many connections each loop was given so far, in loop order.
    public var connectionsPerLoop: [Int] {
        workers.map { $0.started.load(ordering: .relaxed) }
    }

    /// How many connections' handlers threw so far, on every loop (each also
    /// reported as ``RuntimeEvent/connectionHandlerFailed(_:)``; a handler
    /// cancelled by its loop's shutdown is not counted).
    public var handlerFailures: Int {
        workers.reduce(0) { $0 + $1.failed.load(ordering: .relaxed) }
    }

    /// Connections accepted and not yet finished, on every loop: from the
    /// accept (a connection handed to a busy loop counts before its handler
    /// starts) until its handler returns, or until it is closed unserved
    /// (its loop shut down first).
    public var liveConnections: Int {
        workers.reduce(0) { $0 + $1.live.liveCount }
    }

    /// Stops accepting, on every loop, and returns once every listener is
    /// closed. Connections already accepted go on (their tasks end when
    /// their handlers return, or at ``LoopGroup/shutdown()``); the tasks kept
    /// waiting for a next connection end. Idempotent.
    ///
    /// For a graceful shutdown, wait for the connections accepted before it
    /// with a grace period, then shut the group down:
    ///
    /// ```swift
    /// let group = try LoopGroup(loops: 2)
    /// let server = try await group.serve(SocketAddress("127.0.0.1:0")) { connection in
    ///     _ = try await connection.read()
    /// }
    /// // ... on SIGTERM:
    /// await server.close()
    /// let drained = try await value(of: timeoutFuture(.seconds(5), server.waitForConnectionsFuture()))
    /// print(drained)                    // success(()): no connection was open
    /// group.shutdown()                  // cancels the handlers still running
    /// ```
    public func close() async {
        for listener in listeners { listener.close() }
        for acceptor in acceptors { _ = await acceptor.result }  // each ends once its listener is closed
        for pool in workers {
            pool.close()
            pool.live.close()  // nothing is accepted any more
        }
    }

    /// A future ready once the server is closed (``close()``) and every
    /// connection it accepted has finished (``liveConnections`` is 0).
    ///
    /// A handler's own count (a ``TaskTracker`` token taken in the handler)
    /// misses a connection accepted and not yet started: with
    /// ``ConnectionDistribution/handOff``, one handed to a loop busy with
    /// other work waits there for its task. This count starts at the accept.
    ///
    /// **Cancellation:** cancel-safe; dropping it changes nothing.
    public func waitForConnectionsFuture() -> ConnectionsFinished {
        ConnectionsFinished(waits: workers.map { $0.live.waitFuture() })
    }

    /// Waits until the server is closed and every connection it accepted has
    /// finished (see ``waitForConnectionsFuture()``), from `async` code.
    ///
    /// **Cancellation:** cancel-safe; throws `CancellationError`.
    nonisolated(nonsending)
    public func waitForConnections() async throws(CancellationError) {
        _ = try await Weft.value(transferring: UnsafeTransfer(value: waitForConnectionsFuture()))
    }
}

/// The future returned by ``GroupServer/waitForConnectionsFuture()``: each
/// loop's count, in turn (each, once closed and at zero, stays there).
///
/// Poll it from one task, as ``TaskTrackerWait``: only the task that polled a
/// copy last is woken. Make a `waitForConnectionsFuture()` per task instead.
public struct ConnectionsFinished: Future {
    private var waits: [TaskTrackerWait]
    private var finished = 0

    init(waits: [TaskTrackerWait]) { self.waits = waits }

    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        while finished < waits.count {
            guard case .ready = waits[finished].poll(&context) else { return .pending }
            finished += 1
        }
        return .ready(())
    }
}

extension TCPStream {
    /// A stream on the loop running the calling thread for the connected
    /// socket `descriptor`, which it now owns (closed on failure). Fails with
    /// `.invalidArgument` off any loop.
    convenience init(adopting descriptor: Int32) throws(WeftError) {
        guard let loop = EventLoop.current else {
            weft_close(descriptor)
            throw WeftError(.invalidArgument, operation: "adopt socket", detail: "not on a Weft loop")
        }
        self.init(connection: try StreamConnection.adopting(descriptor, loop: loop))
    }
}
