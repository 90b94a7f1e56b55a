/// A future of every success of a list of futures of `Result`, run
/// concurrently in one task, in the list's order; or of the first failure.
/// See ``tryJoinAll(_:)``.
///
/// Only woken children are re-polled (see ``FutureSet``).
///
/// **Cancellation:** the first failure drops every other child at once (and the
/// successes gathered), before it is returned; dropping it does the same.
public struct TryJoinAll<F: Future, Success, Failure: Error>: Future where F.Output == Result<Success, Failure> {
    @usableFromInline var set: FutureSet<F>
    @usableFromInline var successes: [Success?]
    /// Set when it returned: polled again, it found an empty set and returned
    /// success with no value, even after a failure.
    @usableFromInline var isDone = false

    @inlinable
    init(_ futures: [F]) {
        set = FutureSet(futures)
        successes = Array(repeating: nil, count: futures.count)
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<[Success], Failure>> {
        precondition(!isDone, "TryJoinAll polled after it completed")
        while true {
            switch set.pollNextIndexed(&context) {
            case .pending:
                return .pending
            case .ready(let finished?):
                switch finished.output {
                case .success(let value):
                    successes[finished.index] = value
                case .failure(let error):
                    set = FutureSet()
                    successes = []
                    isDone = true
                    return .ready(.failure(error))
                }
            case .ready(nil):
                defer { successes = [] }
                isDone = true
                return .ready(.success(successes.map { $0! }))
            }
        }
    }
}

/// Runs every future in `futures` concurrently in the current task (the async
/// book's `try_join_all`): ready with their successes in the same order, or
/// with the first failure, every other future being dropped at once.
@inlinable
public func tryJoinAll<F: Future, Success, Failure: Error>(
    _ futures: [F]
) -> TryJoinAll<F, Success, Failure> where F.Output == Result<Success, Failure> {
    TryJoinAll(futures)
}
