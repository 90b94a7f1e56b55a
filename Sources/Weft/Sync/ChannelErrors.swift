/// The other side of a channel is gone: every sender was dropped (for a
/// receiver), or the receiver was (for a sender).
public struct ChannelClosed: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error (it carries nothing).
    public init() {}
    public var description: String { "channel closed" }
}

/// A send failed because no receiver is left; the value is handed back.
public struct SendError<Value: Sendable>: Error, CustomStringConvertible {
    /// The value that was not delivered.
    public let value: Value

    /// The error for `value`, which the failed send hands back.
    public init(_ value: Value) {
        self.value = value
    }

    public var description: String { "send failed: no receiver is left" }
}

/// Why a `trySend` did not deliver its value (handed back either way).
public enum TrySendError<Value: Sendable>: Error, CustomStringConvertible {
    /// The channel's buffer is full (or senders are already waiting for room).
    case full(Value)
    /// No receiver is left.
    case closed(Value)

    /// The value that was not delivered.
    public var value: Value {
        switch self {
        case .full(let value), .closed(let value): return value
        }
    }

    public var description: String {
        switch self {
        case .full: return "send failed: channel full"
        case .closed: return "send failed: no receiver is left"
        }
    }
}

extension SendError: Equatable where Value: Equatable {}
extension TrySendError: Equatable where Value: Equatable {}
