/// A future of `Result` that, on success, runs a second future built from the
/// success: the async book's `and_then` on a `TryFuture`. See
/// ``Future/flatMap(_:)``.
///
/// **Cancellation:** dropping it drops whichever future is running; the second
/// future is never built if the first failed or did not finish.
public struct FlatMapSuccess<First: Future, Second: Future, Success, Failure: Error>: Future
where First.Output == Result<Success, Failure>, Second.Output: ResultConvertible, Second.Output.Failure == Failure {
    @usableFromInline var first: First?
    @usableFromInline var second: Second?
    @usableFromInline let next: (Success) -> Second

    @inlinable
    init(first: First, next: @escaping (Success) -> Second) {
        self.first = first
        self.next = next
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Second.Output.Success, Failure>> {
        if first != nil {
            guard case .ready(let output) = first!.poll(&context) else { return .pending }
            first = nil
            switch output {
            case .success(let value): second = next(value)
            case .failure(let error): return .ready(.failure(error))
            }
        }
        precondition(second != nil, "flatMap polled after it completed")
        guard case .ready(let output) = second!.poll(&context) else { return .pending }
        second = nil
        return .ready(output.result)
    }
}

extension Future {
    /// A future of this future's `Result` with its error transformed (the
    /// success passes through).
    ///
    /// **Cancellation:** as ``Map``: dropping it drops this future.
    @inlinable
    public func mapError<Success, Failure, NewFailure>(
        _ transform: @escaping (Failure) -> NewFailure
    ) -> Map<Self, Result<Success, NewFailure>> where Output == Result<Success, Failure> {
        map { $0.mapError(transform) }
    }

    /// A future that, if this future succeeds, runs the future `next` builds
    /// from the success; a failure of either is the output. See ``FlatMapSuccess``.
    ///
    /// <!-- snippet: prelude: listening -->
    /// ```swift
    /// let sent = TCPStream.connectFuture(to: address).flatMap { stream in stream.writeAll(hello) }
    /// try runtime.block(on: sent).get()   // throws the connect's WeftError, or the write's
    /// ```
    @inlinable
    public func flatMap<Success, Failure, Next: Future>(
        _ next: @escaping (Success) -> Next
    ) -> FlatMapSuccess<Self, Next, Success, Failure>
    where Output == Result<Success, Failure>, Next.Output: ResultConvertible, Next.Output.Failure == Failure {
        FlatMapSuccess(first: self, next: next)
    }
}
