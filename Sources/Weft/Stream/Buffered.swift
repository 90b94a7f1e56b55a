/// A future tagged with its position in a stream, so that ``BufferedStream``
/// can put the outputs back in order.
@usableFromInline
struct Numbered<Base: Future>: Future {
    @usableFromInline var base: Base
    @usableFromInline let position: Int

    @inlinable
    init(_ base: Base, position: Int) {
        self.base = base
        self.position = position
    }

    @inlinable
    mutating func poll(_ context: inout Context) -> Poll<(position: Int, output: Base.Output)> {
        base.poll(&context).map { (position, $0) }
    }
}

/// A stream of futures run up to `limit` at once, yielding their outputs in the
/// stream's order. See ``PollStream/buffered(_:)``.
///
/// The limit counts futures running *and* outputs finished early waiting for
/// an earlier one, so no more than `limit` are ever held: a slow first future
/// stalls the rest once `limit - 1` are done behind it (it holds the last
/// place itself).
///
/// **Cancellation:** dropping it drops the stream, every future running and
/// every output finished but not yet yielded: those elements are lost.
/// Elements already yielded are not affected.
public struct BufferedStream<Base: PollStream>: PollStream where Base.Element: Future {
    public typealias Element = Base.Element.Output

    @usableFromInline var base: Base
    @usableFromInline var baseEnded = false
    @usableFromInline var running = FutureSet<Numbered<Base.Element>>()
    /// Finished outputs by position, waiting for their turn: at most `limit`,
    /// and only those there are (a `limit` of `.max` allocates nothing ahead).
    @usableFromInline var finished: [Int: Element] = [:]
    /// Futures taken from the stream so far: the next one's position.
    @usableFromInline var taken = 0
    /// The position whose output is yielded next.
    @usableFromInline var nextPosition = 0
    @usableFromInline let limit: Int

    @inlinable
    init(base: Base, limit: Int) {
        precondition(limit > 0, "buffered's limit must be positive")
        self.base = base
        self.limit = limit
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Element?> {
        if !baseEnded {
            let waiting = taken - nextPosition - running.count  // finished, not yet yielded
            var position = taken
            baseEnded = running.fill(from: &base, limit: limit - waiting, &context) { future in
                defer { position += 1 }
                return Numbered(future, position: position)
            }
            taken = position
        }
        while true {
            if !finished.isEmpty, let output = finished.removeValue(forKey: nextPosition) {
                nextPosition += 1
                return .ready(output)
            }
            switch running.pollNext(&context) {
            case .ready(let done?):
                if done.position == nextPosition {
                    nextPosition += 1
                    return .ready(done.output)
                }
                finished[done.position] = done.output
            case .ready(nil):
                return baseEnded ? .ready(nil) : .pending
            case .pending:
                return .pending
            }
        }
    }
}

/// A stream of futures run up to `limit` at once, yielding their outputs as
/// they finish. See ``PollStream/bufferUnordered(_:)``.
///
/// **Cancellation:** dropping it drops the stream and every future running:
/// those elements are lost. Elements already yielded are not affected.
public struct BufferUnorderedStream<Base: PollStream>: PollStream where Base.Element: Future {
    public typealias Element = Base.Element.Output

    @usableFromInline var base: Base
    @usableFromInline var baseEnded = false
    @usableFromInline var running = FutureSet<Base.Element>()
    @usableFromInline let limit: Int

    @inlinable
    init(base: Base, limit: Int) {
        precondition(limit > 0, "bufferUnordered's limit must be positive")
        self.base = base
        self.limit = limit
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Element?> {
        if !baseEnded { baseEnded = running.fill(from: &base, limit: limit, &context) { $0 } }
        switch running.pollNext(&context) {
        case .ready(let output?): return .ready(output)
        case .ready(nil): return baseEnded ? .ready(nil) : .pending
        case .pending: return .pending
        }
    }
}

extension PollStream where Element: Future {
    /// A stream of the outputs of this stream's futures, in the stream's order,
    /// running up to `limit` of them at once in the polling task. A `limit`
    /// below 1 traps.
    @inlinable
    public func buffered(_ limit: Int) -> BufferedStream<Self> {
        BufferedStream(base: self, limit: limit)
    }

    /// A stream of the outputs of this stream's futures, in the order they
    /// finish, running up to `limit` of them at once in the polling task. A
    /// `limit` below 1 traps.
    @inlinable
    public func bufferUnordered(_ limit: Int) -> BufferUnorderedStream<Self> {
        BufferUnorderedStream(base: self, limit: limit)
    }
}
