#if Logging
import Logging
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
public enum WeftLogging {
    /// Logs every runtime event of the process to `logger` from now on
    /// (replacing any observer installed with `RuntimeEvents.observe`), and
    /// reports a loop whose thread is held longer than `blockedThreshold`.
    public static func bootstrap(_ logger: Logger, blockedThreshold: Duration = .milliseconds(100)) {
        RuntimeEvents.blockedThreshold = blockedThreshold
        RuntimeEvents.observe { event in log(event, to: logger) }
    }

    /// Stops logging runtime events.
    public static func shutdown() {
        RuntimeEvents.observe(nil)
    }

    /// Logs one event (what the observer installed by ``bootstrap(_:blockedThreshold:)`` does).
    public static func log(_ event: RuntimeEvent, to logger: Logger) {
        switch event {
        case .acceptFailed(let error, let shed):
            let outOfDescriptors = error.code == .tooManyOpenFiles
            logger.log(level: outOfDescriptors ? .error : .warning,
                       outOfDescriptors ? "out of file descriptors on accept; waiting connections closed" : "accept failed",
                       metadata: ["error": "\(error)", "operation": "\(error.operation)", "connections_shed": "\(shed)"])
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
#endif
