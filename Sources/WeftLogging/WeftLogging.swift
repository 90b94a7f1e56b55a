#if Logging
import Dispatch
import Glibc
import Logging
import Synchronization
import Weft

/// Weft's runtime events (``Weft/RuntimeEvent``) through swift-log: accept
/// errors such as running out of descriptors, a `block(on:)` that is stuck, a
/// loop whose thread was held past a threshold, and signals received.
///
/// ```swift
/// import Logging
/// import WeftLogging
///
/// WeftLogging.bootstrap(Logger(label: "weft"))
/// ```
///
/// Levels: running out of descriptors and a stuck `block(on:)` are `error`s
/// (an operator must act, or a program is wrong); other accept failures and a
/// blocked loop are `warning`s; a signal is a `notice`. Each record carries
/// its details as metadata (`error`, `operation`, `connections_shed`,
/// `blocked_ms`, `signal`).
///
/// Records are written on a queue of their own, never on a loop's thread: a
/// log handler may block (swift-log's stream handler writing to a pipe
/// nobody reads), and a loop blocked in it would stop its timers, its I/O
/// and the signal that shuts it down. At most 1,024 events wait; past that
/// they are dropped, and the next record written says how many. At the
/// process's normal exit (`exit`, or the end of `main`) the records still
/// waiting are written, for a second at most.
public enum WeftLogging {
    /// Logs every runtime event of the process to `logger` from now on
    /// (replacing any observer installed with `RuntimeEvents.observe`), and
    /// reports a loop whose thread is held longer than `blockedThreshold`.
    public static func bootstrap(_ logger: Logger, blockedThreshold: Duration = .milliseconds(100)) {
        RuntimeEvents.blockedThreshold = blockedThreshold
        let forwarder = EventForwarder(logger: logger)
        EventForwarder.flushAtExit
        RuntimeEvents.observe { event in forwarder.forward(event) }
    }

    /// Stops logging runtime events (those already handed over are still
    /// written; ``flush()`` waits for them).
    public static func shutdown() {
        RuntimeEvents.observe(nil)
    }

    /// Returns once every event handed over so far has been written, e.g.
    /// before the process exits.
    public static func flush() {
        EventForwarder.queue.sync {}
    }

    /// Logs one event (what the observer installed by ``bootstrap(_:blockedThreshold:)`` does).
    public static func log(_ event: RuntimeEvent, to logger: Logger) {
        switch event {
        case .acceptFailed(let error, let shed):
            let outOfDescriptors = error.code == .tooManyOpenFiles
            // With no descriptor to spare, or the one freed taken at once,
            // nothing was shed: the connections still wait in the backlog.
            let message: Logger.Message = switch (outOfDescriptors, shed > 0) {
            case (true, true): "out of file descriptors on accept; waiting connections closed"
            case (true, false): "out of file descriptors on accept; connections wait in the backlog"
            case (false, _): "accept failed"
            }
            logger.log(level: outOfDescriptors ? .error : .warning, message, metadata: ["error": "\(error)", "operation": "\(error.operation)", "connections_shed": "\(shed)"])
        case .stuck(let error):
            logger.error("block(on:) is stuck: nothing can finish its future",
                         metadata: ["error": "\(error)", "detail": "\(error.detail)"])
        case .loopBlocked(let duration):
            let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
            logger.warning("a loop's thread was held without a look at timers and I/O",
                           metadata: ["blocked_ms": "\(milliseconds)"])
        case .signalReceived(let signal):
            logger.notice("signal received", metadata: ["signal": "\(signal)"])
        case .connectionHandlerFailed(let error):
            logger.warning("a connection's handler failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Hands each event to ``queue``, which logs it, from the loop's thread that
/// noticed it: at most ``limit`` wait, the others are counted as dropped.
final class EventForwarder: Sendable {
    /// One for the process, so that ``WeftLogging/flush()`` waits for every
    /// logger's records.
    static let queue = DispatchQueue(label: "WeftLogging")
    static let limit = 1_024
    /// Registers, once, a flush at the process's normal exit: a record handed
    /// over just before it is still written (a program that exits after an
    /// event lost it), and a handler that blocks holds the exit a second at
    /// most.
    static let flushAtExit: Void = {
        atexit {
            let done = DispatchSemaphore(value: 0)
            EventForwarder.queue.async { done.signal() }
            _ = done.wait(timeout: .now() + 1)
        }
    }()
    let logger: Logger
    /// Events handed to the queue and not yet logged.
    private let waiting = Atomic<Int>(0)
    /// Events dropped since the last record written.
    private let dropped = Atomic<Int>(0)

    init(logger: Logger) {
        self.logger = logger
    }

    func forward(_ event: RuntimeEvent) {
        guard waiting.add(1, ordering: .relaxed).newValue <= Self.limit else {
            waiting.subtract(1, ordering: .relaxed)
            dropped.add(1, ordering: .relaxed)
            return
        }
        Self.queue.async { [self] in
            let lost = dropped.exchange(0, ordering: .relaxed)
            if lost > 0 {
                logger.warning("runtime events dropped: the log handler fell behind", metadata: ["dropped": "\(lost)"])
            }
            WeftLogging.log(event, to: logger)
            waiting.subtract(1, ordering: .relaxed)
        }
    }
}
#endif
