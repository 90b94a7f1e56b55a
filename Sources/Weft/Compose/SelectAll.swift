/// Futures of one type raced in one task, the losers kept: the first to finish
/// wins, with its index, and the others are handed back still running. See
/// ``selectAll(_:)``.
///
/// Each poll starts at a random branch (seeded in deterministic mode), so no
/// branch is starved by one that is always ready.
///
/// **Cancellation:** dropping it drops every branch; once it is ready, the
/// branches that did not win belong to the caller (`rest`, in their original
/// order), none of them dropped.
public struct SelectAll<F: Future>: Future {
    @usableFromInline var branches: [F]

    @inlinable
    init(_ branches: [F]) {
        precondition(!branches.isEmpty, "selectAll needs at least one future")
        self.branches = branches
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<(output: F.Output, index: Int, rest: [F])> {
        precondition(!branches.isEmpty, "selectAll polled after it completed")
        guard let (index, output) = branches.pollFirstReady(&context) else { return .pending }
        var rest = branches
        branches = []
        rest.remove(at: index)
        return .ready((output, index, rest))
    }
}

/// Runs `futures` concurrently until one finishes (futures-rs's `select_all`):
/// ready with its output, its index in `futures`, and the others, still running,
/// to select over again. An empty array traps.
///
/// ```swift
/// let runtime = try Runtime()
/// var pending = [30, 10, 20].map { ms in sleepFuture(for: .milliseconds(ms)).map { ms } }
/// while !pending.isEmpty {
///     let (ms, index, rest) = try runtime.block(on: selectAll(pending))   // 10 (index 1), then 20, then 30
///     pending = rest
/// }
/// ```
@inlinable
public func selectAll<F: Future>(_ futures: [F]) -> SelectAll<F> {
    SelectAll(futures)
}

/// Futures of `Result` raced in one task until one succeeds. See ``selectOk(_:)``.
///
/// A branch that fails is dropped from the race; the error of the last one to
/// fail is the output if all fail. Each poll starts at a random branch.
///
/// **Cancellation:** dropping it drops every branch still running; once it is
/// ready with a success, the branches still running are handed back in `rest`
/// (their original order).
public struct SelectOk<F: Future, Success, Failure: Error>: Future where F.Output == Result<Success, Failure> {
    @usableFromInline var branches: [F]

    @inlinable
    init(_ branches: [F]) {
        precondition(!branches.isEmpty, "selectOk needs at least one future")
        self.branches = branches
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<(success: Success, rest: [F]), Failure>> {
        precondition(!branches.isEmpty, "selectOk polled after it completed")
        var index = fairStartIndex(count: branches.count)
        var remaining = branches.count
        while remaining > 0 {
            remaining -= 1
            if index >= branches.count { index = 0 }
            guard case .ready(let output) = branches[index].poll(&context) else {
                index += 1
                continue
            }
            switch output {
            case .success(let value):
                var rest = branches
                branches = []
                rest.remove(at: index)
                return .ready(.success((value, rest)))
            case .failure(let error):
                branches.remove(at: index)  // the next branch slides into `index`
                if branches.isEmpty { return .ready(.failure(error)) }
            }
        }
        return .pending
    }
}

/// Runs `futures` concurrently until one succeeds (futures-rs's `select_ok`):
/// ready with its success and the futures still running; failures are dropped
/// as they come, and if every future fails, the output is the last failure.
/// An empty array traps.
@inlinable
public func selectOk<F: Future, Success, Failure: Error>(
    _ futures: [F]
) -> SelectOk<F, Success, Failure> where F.Output == Result<Success, Failure> {
    SelectOk(futures)
}
