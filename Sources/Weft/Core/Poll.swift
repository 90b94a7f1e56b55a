/// The result of polling a future once: either its output, or "not yet".
///
/// `.pending` carries a promise (docs/ARCHITECTURE.md, invariant 2): whoever returned it has
/// arranged for the current ``Context``'s waker to be woken once polling again can
/// make progress.
@frozen
public enum Poll<Value> {
    /// The future finished with this value. Do not poll it again.
    case ready(Value)
    /// Not finished; a wake-up has been arranged.
    case pending

    /// Whether this is `.ready`.
    @inlinable
    public var isReady: Bool {
        if case .ready = self { return true }
        return false
    }

    /// Transforms a ready value, leaving `.pending` as it is.
    @inlinable
    public func map<T>(_ transform: (Value) throws -> T) rethrows -> Poll<T> {
        switch self {
        case .ready(let value): return .ready(try transform(value))
        case .pending: return .pending
        }
    }
}

extension Poll {
    /// `self`, having set `isDone` if it is ready: for a future whose work
    /// must not be done twice, which fails when polled after it completed.
    @inlinable
    func markingDone(_ isDone: inout Bool) -> Poll {
        if case .ready = self { isDone = true }
        return self
    }
}

extension Poll: Sendable where Value: Sendable {}
extension Poll: Equatable where Value: Equatable {}
