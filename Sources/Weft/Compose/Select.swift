import CWeftSupport

/// The output of a two-way ``select(either:or:)``: which branch finished first.
public enum Either<Left, Right> {
    case left(Left)
    case right(Right)
}

extension Either: Sendable where Left: Sendable, Right: Sendable {}
extension Either: Equatable where Left: Equatable, Right: Equatable {}

/// Which branch a select polls first this time: random, so that no branch is
/// starved by another that is always ready.
@usableFromInline
func fairStartIndex(count: Int) -> Int {
    Int(weft_random() % UInt64(count))
}

/// Two futures raced in one task: the first to finish wins and the other is
/// dropped (which cancels it). See ``select(either:or:)``.
///
/// Each poll starts with a randomly chosen branch, so when both are ready,
/// either may win; neither can starve the other.
///
/// **Cancellation:** dropping it drops both branches.
public struct Select<A: Future, B: Future>: Future {
    @usableFromInline var a: A?
    @usableFromInline var b: B?

    @inlinable
    init(_ a: A, _ b: B) {
        self.a = a
        self.b = b
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Either<A.Output, B.Output>> {
        guard a != nil, b != nil else { preconditionFailure("select polled after it completed") }
        if fairStartIndex(count: 2) == 0 {
            if let won = pollA(&context) ?? pollB(&context) { return .ready(won) }
        } else {
            if let won = pollB(&context) ?? pollA(&context) { return .ready(won) }
        }
        return .pending
    }

    @inlinable
    mutating func pollA(_ context: inout Context) -> Either<A.Output, B.Output>? {
        guard case .ready(let value) = a!.poll(&context) else { return nil }
        a = nil
        b = nil
        return .left(value)
    }

    @inlinable
    mutating func pollB(_ context: inout Context) -> Either<A.Output, B.Output>? {
        guard case .ready(let value) = b!.poll(&context) else { return nil }
        a = nil
        b = nil
        return .right(value)
    }
}

/// Runs `first` and `second` concurrently; the first to finish wins and the other
/// is dropped. (Labelled so it cannot be mistaken for the C `select`.)
@inlinable
public func select<A: Future, B: Future>(either first: A, or second: B) -> Select<A, B> {
    Select(first, second)
}

/// Futures of one type raced in one task: the first to finish wins (with its
/// index) and the rest are dropped. See ``race(_:)``.
///
/// Each poll starts at a random branch, so no branch is starved.
/// **Cancellation:** dropping it drops every branch.
public struct Race<F: Future>: Future {
    @usableFromInline var branches: [F]

    @inlinable
    init(_ branches: [F]) {
        precondition(!branches.isEmpty, "race needs at least one future")
        self.branches = branches
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<(index: Int, output: F.Output)> {
        precondition(!branches.isEmpty, "race polled after it completed")
        guard let won = branches.pollFirstReady(&context) else { return .pending }
        branches.removeAll()
        return .ready(won)
    }
}

extension Array where Element: Future {
    /// Polls the futures in turn, starting at a random one, until one is
    /// ready: its index and output, or nil when none is (every one polled).
    @inlinable
    mutating func pollFirstReady(_ context: inout Context) -> (index: Int, output: Element.Output)? {
        let start = fairStartIndex(count: count)
        for offset in 0..<count {
            let index = (start + offset) % count
            if case .ready(let output) = self[index].poll(&context) { return (index, output) }
        }
        return nil
    }
}

/// Runs `futures` concurrently; the first to finish wins, with its index in the
/// array, and the others are dropped. An empty array traps (nothing could win).
@inlinable
public func race<F: Future>(_ futures: [F]) -> Race<F> {
    Race(futures)
}
