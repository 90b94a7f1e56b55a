import Synchronization

/// Something a runtime noticed that an operator may want to know: what the
/// logging integration (`WeftLogging`) logs. Weft itself prints nothing; it
/// hands each event to the observer installed with ``RuntimeEvents/observe(_:)``.
public enum RuntimeEvent: Sendable, Equatable, CustomStringConvertible {
    /// An accept failed and the listener kept listening (the error names the
    /// listener's address). When the process or the system was out of file
    /// descriptors (`EMFILE`/`ENFILE`), `connectionsShed` connections waiting
    /// in the backlog were accepted and closed at once.
    case acceptFailed(WeftError, connectionsShed: Int)
    /// `block(on:)` found that nothing could ever finish its future, and
    /// returned this `.stuck` error.
    case stuck(WeftError)
    /// The task polls and Swift jobs a loop ran between two looks at the OS
    /// (it looks after 61 polls and jobs, or when none is left) took this long, past
    /// ``RuntimeEvents/blockedThreshold``: something held the loop's thread,
    /// and timers and I/O of every task on it waited meanwhile.
    case loopBlocked(Duration)
    /// A signal watched by a Weft signal stream (`signals(_:)`,
    /// `shutdownSignal()`) arrived.
    case signalReceived(Int32)
    /// The handler of a ``LoopGroup`` server's connection threw (here its
    /// error, described); the connection was closed and the server goes on
    /// (``GroupServer/handlerFailures`` counts them). A handler cancelled by
    /// its loop's shutdown is not a failure.
    case connectionHandlerFailed(String)

    public var description: String {
        switch self {
        case .acceptFailed(let error, let shed):
            shed > 0 ? "\(error); closed \(shed) waiting connection(s)" : "\(error)"
        case .stuck(let error): "\(error)"
        case .loopBlocked(let duration): "a loop's thread was held for \(duration) without a look at timers and I/O"
        case .signalReceived(let signal): "signal \(signal) received"
        case .connectionHandlerFailed(let error): "a connection's handler failed: \(error)"
        }
    }
}

/// Where a runtime's ``RuntimeEvent``s go: one observer for the process, as
/// swift-log's `LoggingSystem` has one factory.
public enum RuntimeEvents {
    /// Installs `observer` for every runtime in the process (replacing the
    /// previous one; `nil` removes it). It is called on the thread of the loop
    /// that noticed the event, so it must be quick and must not block: hand
    /// slow work elsewhere. Events are rare (failures, stalls, signals); none
    /// is produced on a loop's fast path.
    public static func observe(_ observer: (@Sendable (RuntimeEvent) -> Void)?) {
        // The flag is set under the lock too: set after it, two calls at once
        // could leave one's observer installed and the other's flag, false.
        installed.locked {
            $0 = observer
            isObserved.store(observer != nil, ordering: .releasing)
        }
    }

    /// How long one batch of work may hold a loop's thread before a
    /// ``RuntimeEvent/loopBlocked(_:)`` event reports it: 100 ms by default.
    /// Timed only while an observer is installed.
    public static var blockedThreshold: Duration {
        get { .nanoseconds(Int64(blockedThresholdNanoseconds.load(ordering: .relaxed))) }
        set {
            // Saturating: a threshold of centuries (meaning "never") must not trap.
            let (seconds, attoseconds) = newValue.components
            let nanoseconds: Int64 = if seconds < 0 {
                0
            } else if seconds >= Int64.max / 1_000_000_000 {
                Int64.max
            } else {
                max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
            }
            blockedThresholdNanoseconds.store(UInt64(nanoseconds), ordering: .relaxed)
        }
    }

    /// Hands `event` to the observer, if one is installed.
    static func report(_ event: @autoclosure () -> RuntimeEvent) {
        guard isObserved.load(ordering: .acquiring), let observer = installed.locked({ $0 }) else { return }
        observer(event())
    }

    /// Whether an observer is installed: one relaxed load where an event could
    /// be produced.
    static var isObserving: Bool { isObserved.load(ordering: .relaxed) }

    static let blockedThresholdNanoseconds = Atomic<UInt64>(100_000_000)
    private static let installed = Mutex<(@Sendable (RuntimeEvent) -> Void)?>(nil)
    private static let isObserved = Atomic<Bool>(false)
}
