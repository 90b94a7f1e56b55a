/// A `Result`, seen through a protocol: what lets the variadic ``tryJoin(_:_:_:_:_:)``
/// name each child's success type (a parameter pack cannot yet be constrained to
/// `Result<each Success, Failure>`).
public protocol ResultConvertible {
    /// The value of a success.
    associatedtype Success
    /// The error of a failure.
    associatedtype Failure: Error
    /// This value as a `Result`.
    var result: Result<Success, Failure> { get }
}

extension Result: ResultConvertible {
    /// Itself.
    @inlinable
    public var result: Result<Success, Failure> { self }
}

/// One child of a try-join: the future until it succeeds, then its success
/// until taken. A failure is handed straight to the join, which drops the rest.
@usableFromInline
struct TryMaybeDone<F: Future> where F.Output: ResultConvertible {
    @usableFromInline var future: F?
    @usableFromInline var success: F.Output.Success?

    @inlinable
    init(_ future: F) { self.future = future }

    /// Polls the child if it is still running: `.ready(nil)` once its success is
    /// stored, `.ready(error)` if it failed, `.pending` otherwise.
    @inlinable
    mutating func poll(_ context: inout Context) -> Poll<F.Output.Failure?> {
        if success != nil { return .ready(nil) }
        precondition(future != nil, "tryJoin polled after it completed")
        guard case .ready(let output) = future!.poll(&context) else { return .pending }
        future = nil
        switch output.result {
        case .success(let value):
            success = value
            return .ready(nil)
        case .failure(let error):
            return .ready(error)
        }
    }

    @inlinable
    mutating func take() -> F.Output.Success {
        guard let value = success.take() else { preconditionFailure("tryJoin output taken twice") }
        return value
    }

    /// Drops the child (cancelling it) and any success it stored.
    @inlinable
    mutating func drop() {
        future = nil
        success = nil
    }
}

/// Two futures of `Result` run concurrently in one task: ready with both
/// successes, or with the first failure. See ``tryJoin(_:_:)``.
///
/// Each child is polled first in turn, as ``Join2``'s (so that a child that spends the
/// task's budget cannot starve the others).
///
/// **Cancellation:** the first failure drops the other child at once (before the
/// join returns); dropping the join drops every unfinished child and the
/// successes already stored.
public struct TryJoin2<A: Future, B: Future, Failure: Error>: Future
where A.Output: ResultConvertible, B.Output: ResultConvertible,
      A.Output.Failure == Failure, B.Output.Failure == Failure {
    @usableFromInline var a: TryMaybeDone<A>
    @usableFromInline var b: TryMaybeDone<B>
    @usableFromInline var rotation = JoinRotation()

    @inlinable
    init(_ a: A, _ b: B) {
        self.a = TryMaybeDone(a)
        self.b = TryMaybeDone(b)
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<(A.Output.Success, B.Output.Success), Failure>> {
        var aState: Poll<Failure?> = .pending
        var bState: Poll<Failure?> = .pending
        let first = rotation.next(of: 2)
        for step in 0..<2 {
            if (first + step) % 2 == 0 {
                aState = a.poll(&context)
                if case .ready(let error?) = aState { return fail(error) }
            } else {
                bState = b.poll(&context)
                if case .ready(let error?) = bState { return fail(error) }
            }
        }
        guard aState.isReady && bState.isReady else { return .pending }
        return .ready(.success((a.take(), b.take())))
    }

    @inlinable
    mutating func fail(_ error: Failure) -> Poll<Result<(A.Output.Success, B.Output.Success), Failure>> {
        a.drop()
        b.drop()
        return .ready(.failure(error))
    }
}

/// Three futures of `Result` run concurrently in one task, each polled first
/// in turn (so that a child that spends the task's budget cannot starve the others). See
/// ``tryJoin(_:_:_:)``.
///
/// **Cancellation:** the first failure drops the other children at once;
/// dropping the join drops every unfinished child and the stored successes.
public struct TryJoin3<A: Future, B: Future, C: Future, Failure: Error>: Future
where A.Output: ResultConvertible, B.Output: ResultConvertible, C.Output: ResultConvertible,
      A.Output.Failure == Failure, B.Output.Failure == Failure, C.Output.Failure == Failure {
    @usableFromInline var a: TryMaybeDone<A>
    @usableFromInline var b: TryMaybeDone<B>
    @usableFromInline var c: TryMaybeDone<C>
    @usableFromInline var rotation = JoinRotation()

    @inlinable
    init(_ a: A, _ b: B, _ c: C) {
        self.a = TryMaybeDone(a)
        self.b = TryMaybeDone(b)
        self.c = TryMaybeDone(c)
    }

    @inlinable
    public mutating func poll(
        _ context: inout Context
    ) -> Poll<Result<(A.Output.Success, B.Output.Success, C.Output.Success), Failure>> {
        var aState: Poll<Failure?> = .pending
        var bState: Poll<Failure?> = .pending
        var cState: Poll<Failure?> = .pending
        let first = rotation.next(of: 3)
        for step in 0..<3 {
            let failure: Failure?
            switch (first + step) % 3 {
            case 0:
                aState = a.poll(&context)
                failure = if case .ready(let error?) = aState { error } else { nil }
            case 1:
                bState = b.poll(&context)
                failure = if case .ready(let error?) = bState { error } else { nil }
            default:
                cState = c.poll(&context)
                failure = if case .ready(let error?) = cState { error } else { nil }
            }
            if let failure { return fail(failure) }
        }
        guard aState.isReady && bState.isReady && cState.isReady else { return .pending }
        return .ready(.success((a.take(), b.take(), c.take())))
    }

    @inlinable
    mutating func fail(
        _ error: Failure
    ) -> Poll<Result<(A.Output.Success, B.Output.Success, C.Output.Success), Failure>> {
        a.drop()
        b.drop()
        c.drop()
        return .ready(.failure(error))
    }
}

/// A try-join child in its own box, as ``JoinSlot`` is for ``Join``.
@usableFromInline
final class TryJoinSlot<F: Future> where F.Output: ResultConvertible {
    @usableFromInline var state: TryMaybeDone<F>

    @inlinable
    init(_ future: F) {
        state = TryMaybeDone(future)
    }

    @inlinable
    init(state: TryMaybeDone<F>) {
        self.state = state
    }

    /// A slot of its own holding a copy of this one's child.
    @inlinable
    func copy() -> TryJoinSlot<F> { TryJoinSlot(state: state) }
}

@inlinable
func takeSuccess<F: Future>(_ slot: TryJoinSlot<F>) -> F.Output.Success {
    slot.state.take()
}

/// Any number of futures of `Result` run concurrently in one task: ready with
/// a tuple of their successes, or with the first failure. See
/// ``tryJoin(_:_:_:_:_:)``.
///
/// The failure is `any Error`: Swift 6.3 cannot yet require every child of a
/// parameter pack to fail with one type (`tryJoin` of two or three children
/// keeps the typed error).
///
/// Each child is polled first in turn (so that a child that spends the task's budget cannot
/// starve the others).
///
/// **Cancellation:** the first failure drops every other child at once;
/// dropping the join drops every unfinished child and the stored successes.
public struct TryJoin<each F: Future>: Future where repeat (each F).Output: ResultConvertible {
    @usableFromInline var slots: (repeat TryJoinSlot<each F>)
    /// See ``JoinOwner``.
    @usableFromInline var owner = JoinOwner()
    @usableFromInline var rotation = JoinRotation()

    @inlinable
    init(_ futures: repeat each F) {
        slots = (repeat TryJoinSlot(each futures))
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<(repeat (each F).Output.Success), any Error>> {
        if !isKnownUniquelyReferenced(&owner) {
            owner = JoinOwner()
            slots = (repeat (each slots).copy())
        }
        var count = 0
        for _ in repeat each slots { count += 1 }
        let first = rotation.next(of: count)
        var allDone = true
        var failure: (any Error)?
        // From the first in turn to the last, then those before it.
        var index = 0
        for slot in repeat each slots {
            guard failure == nil else { break }
            if index >= first {
                switch slot.state.poll(&context) {
                case .pending: allDone = false
                case .ready(let error?): failure = error
                case .ready(nil): break
                }
            }
            index += 1
        }
        index = 0
        for slot in repeat each slots {
            guard failure == nil && index < first else { break }
            switch slot.state.poll(&context) {
            case .pending: allDone = false
            case .ready(let error?): failure = error
            case .ready(nil): break
            }
            index += 1
        }
        if let failure {
            for slot in repeat each slots { slot.state.drop() }
            return .ready(.failure(failure))
        }
        guard allDone else { return .pending }
        return .ready(.success((repeat takeSuccess(each slots))))
    }
}

/// Runs two futures of `Result` concurrently in the current task (the async
/// book's `try_join!`): ready with both successes, or with the first failure,
/// the other future being dropped at once.
///
/// ```swift
/// let runtime = try Runtime()
/// let quick = timeoutFuture(.seconds(1), sleepFuture(for: .milliseconds(10)).map { "quick" })
/// let slow = timeoutFuture(.milliseconds(20), sleepFuture(for: .seconds(60)).map { "slow" })
/// switch try runtime.block(on: tryJoin(quick, slow)) {
/// case .success(let (first, second)): print(first, second)
/// case .failure(let timedOut): print(timedOut)   // after 20 ms, not 60 s: the other future was dropped
/// }
/// ```
@inlinable
public func tryJoin<A: Future, B: Future, Failure: Error>(_ a: A, _ b: B) -> TryJoin2<A, B, Failure>
where A.Output: ResultConvertible, B.Output: ResultConvertible, A.Output.Failure == Failure, B.Output.Failure == Failure {
    TryJoin2(a, b)
}

/// Runs three futures of `Result` concurrently; ready with all successes, or
/// with the first failure, the others being dropped at once.
@inlinable
public func tryJoin<A: Future, B: Future, C: Future, Failure: Error>(_ a: A, _ b: B, _ c: C) -> TryJoin3<A, B, C, Failure>
where A.Output: ResultConvertible, B.Output: ResultConvertible, C.Output: ResultConvertible,
      A.Output.Failure == Failure, B.Output.Failure == Failure, C.Output.Failure == Failure {
    TryJoin3(a, b, c)
}

/// Runs any number (four or more) of futures of `Result` concurrently; ready
/// with a tuple of their successes in argument order, or with the first failure
/// (as `any Error`; see ``TryJoin``), the others being dropped at once.
@inlinable
public func tryJoin<A: Future, B: Future, C: Future, D: Future, each Rest: Future>(
    _ a: A, _ b: B, _ c: C, _ d: D, _ rest: repeat each Rest
) -> TryJoin<A, B, C, D, repeat each Rest>
where A.Output: ResultConvertible, B.Output: ResultConvertible, C.Output: ResultConvertible,
      D.Output: ResultConvertible, repeat (each Rest).Output: ResultConvertible {
    TryJoin(a, b, c, d, repeat each rest)
}
