/// A future that runs a future for each element of a stream, one after the
/// other, and is ready when the stream has ended and the last one finished.
/// See ``PollStream/forEach(_:)``.
///
/// **Cancellation:** dropping it drops the stream and the element's future
/// that is running; elements not yet taken from the stream stay there (and go
/// with it).
public struct ForEachElement<Base: PollStream, Body: Future<Void>>: Future {
    @usableFromInline var elements: ThenStream<Base, Body>

    @inlinable
    init(base: Base, body: @escaping (Base.Element) -> Body) {
        self.elements = ThenStream(base: base, transform: body)
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            switch elements.pollNext(&context) {
            case .pending: return .pending
            case .ready(nil): return .ready(())
            case .ready(.some): continue
            }
        }
    }
}

/// A future that runs a future for each element of a stream, up to `limit` of
/// them at once, in the polling task. See
/// ``PollStream/forEachConcurrent(limit:_:)``.
///
/// The futures in flight live in a ``FutureSet``: each is polled only when it
/// was woken. The stream is polled only while fewer than `limit` futures are in
/// flight, so the limit bounds the futures in flight, not the elements the
/// stream buffers. Ready once the stream has ended *and* every future in
/// flight finished: a stream that ends while futures run does not cut them short.
///
/// **Cancellation:** dropping it drops the stream and every future in flight
/// (each is cancelled); elements still in the stream go with it.
public struct ForEachConcurrent<Base: PollStream, Body: Future<Void>>: Future {
    @usableFromInline var base: Base
    @usableFromInline var inFlight = FutureSet<Body>()
    @usableFromInline var baseEnded = false
    @usableFromInline let limit: Int
    @usableFromInline let body: (Base.Element) -> Body

    @inlinable
    init(base: Base, limit: Int?, body: @escaping (Base.Element) -> Body) {
        precondition(limit.map { $0 > 0 } ?? true, "forEachConcurrent's limit must be positive (nil: no limit)")
        self.base = base
        self.limit = limit ?? .max
        self.body = body
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            if !baseEnded { baseEnded = inFlight.fill(from: &base, limit: limit, &context, body) }
            switch inFlight.pollNext(&context) {
            case .ready(.some): continue  // a slot is free: take more from the stream
            case .ready(nil): if baseEnded { return .ready(()) } else { return .pending }
            case .pending: return .pending
            }
        }
    }
}

/// A future that runs a future of `Result` for each element of a stream, up to
/// `limit` at once, until one fails. See
/// ``PollStream/tryForEachConcurrent(limit:_:)``.
///
/// **Cancellation:** the first failure drops the stream and every other future
/// in flight at once, and is the output; dropping it does the same. Elements
/// still in the stream go with it.
public struct TryForEachConcurrent<Base: PollStream, Body: Future, Failure: Error>: Future
where Body.Output == Result<Void, Failure> {
    @usableFromInline var base: Base?
    @usableFromInline var inFlight = FutureSet<Body>()
    @usableFromInline let limit: Int
    @usableFromInline let body: (Base.Element) -> Body
    /// Set when it returned a failure: polled again, it would have found the
    /// stream and the set gone, and returned success.
    @usableFromInline var failed = false

    @inlinable
    init(base: Base, limit: Int?, body: @escaping (Base.Element) -> Body) {
        precondition(limit.map { $0 > 0 } ?? true, "tryForEachConcurrent's limit must be positive (nil: no limit)")
        self.base = base
        self.limit = limit ?? .max
        self.body = body
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Void, Failure>> {
        precondition(!failed, "TryForEachConcurrent polled after it completed")
        while true {
            if base != nil, inFlight.fill(from: &base!, limit: limit, &context, body) { base = nil }
            switch inFlight.pollNext(&context) {
            case .ready(.success?): continue
            case .ready(.failure(let error)?):
                base = nil
                inFlight = FutureSet()
                failed = true
                return .ready(.failure(error))
            case .ready(nil): if base == nil { return .ready(.success(())) } else { return .pending }
            case .pending: return .pending
            }
        }
    }
}

/// A future of every element of a stream, in order, ready when it ends. See
/// ``PollStream/collect()``.
///
/// **Cancellation:** dropping it drops the stream and the elements collected so
/// far.
public struct Collect<Base: PollStream>: Future {
    @usableFromInline var base: Base
    @usableFromInline var elements: [Base.Element] = []

    @inlinable
    init(base: Base) {
        self.base = base
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<[Base.Element]> {
        while true {
            switch base.pollNext(&context) {
            case .pending: return .pending
            case .ready(nil):
                defer { elements = [] }
                return .ready(elements)
            case .ready(let element?): elements.append(element)
            }
        }
    }
}

extension PollStream {
    /// A future that runs `body`'s future for each element, one at a time,
    /// ready when the stream has ended and the last one finished.
    @inlinable
    public func forEach<Body: Future<Void>>(_ body: @escaping (Element) -> Body) -> ForEachElement<Self, Body> {
        ForEachElement(base: self, body: body)
    }

    /// A future that runs `body`'s future for each element, at most `limit` at
    /// once (`nil`: no limit), all in the polling task; ready when the stream
    /// has ended and every future finished. A `limit` below 1 traps. The async
    /// book's web server:
    ///
    /// <!-- snippet: compile-only: serves until the listener is closed; prelude: listening, handleConnection -->
    /// ```swift
    /// try runtime.block(on: listener.incoming.forEachConcurrent(limit: nil) { stream in handleConnection(stream) })
    /// ```
    @inlinable
    public func forEachConcurrent<Body: Future<Void>>(
        limit: Int?, _ body: @escaping (Element) -> Body
    ) -> ForEachConcurrent<Self, Body> {
        ForEachConcurrent(base: self, limit: limit, body: body)
    }

    /// As ``forEachConcurrent(limit:_:)`` for futures of `Result`: the first
    /// failure stops everything (the stream and the other futures are dropped)
    /// and is the output. A `limit` below 1 traps.
    @inlinable
    public func tryForEachConcurrent<Body: Future, Failure: Error>(
        limit: Int?, _ body: @escaping (Element) -> Body
    ) -> TryForEachConcurrent<Self, Body, Failure> where Body.Output == Result<Void, Failure> {
        TryForEachConcurrent(base: self, limit: limit, body: body)
    }

    /// A future of every element, in order, ready when the stream ends.
    @inlinable
    public func collect() -> Collect<Self> {
        Collect(base: self)
    }
}
