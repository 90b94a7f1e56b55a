/// A future that transforms another future's output. See ``Future/map(_:)``.
///
/// **Cancellation:** dropping it drops the inner future.
public struct Map<Base: Future, Output>: Future {
    @usableFromInline var base: Base
    @usableFromInline let transform: (Base.Output) -> Output

    @inlinable
    init(base: Base, transform: @escaping (Base.Output) -> Output) {
        self.base = base
        self.transform = transform
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        base.poll(&context).map(transform)
    }
}

/// A future that runs a second future built from the first one's output: the
/// async book's `and_then`. See ``Future/then(_:)``.
///
/// **Cancellation:** dropping it drops whichever future is running; the second
/// future is never built if the first did not finish.
public struct Then<First: Future, Second: Future>: Future {
    @usableFromInline enum Stage {
        case first(First)
        case second(Second)
        case done
    }

    @usableFromInline var stage: Stage
    @usableFromInline let next: (First.Output) -> Second

    @inlinable
    init(first: First, next: @escaping (First.Output) -> Second) {
        self.stage = .first(first)
        self.next = next
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Second.Output> {
        if case .first(var first) = stage {
            stage = .done  // avoid holding two copies while polling
            switch first.poll(&context) {
            case .pending:
                stage = .first(first)
                return .pending
            case .ready(let value):
                stage = .second(next(value))
            }
        }
        guard case .second(var second) = stage else {
            preconditionFailure("Then polled after it completed")
        }
        stage = .done
        switch second.poll(&context) {
        case .pending:
            stage = .second(second)
            return .pending
        case .ready(let value):
            return .ready(value)
        }
    }
}

extension Future {
    /// A future whose output is `transform` applied to this future's output.
    @inlinable
    public func map<T>(_ transform: @escaping (Output) -> T) -> Map<Self, T> {
        Map(base: self, transform: transform)
    }

    /// A future that, when this one finishes, builds the next one from its output
    /// and runs it.
    ///
    /// ```swift
    /// let runtime = try Runtime()
    /// let delay = ready(Duration.milliseconds(5))       // say, a delay a first future computed
    /// let slept = try runtime.block(on: delay.then { delay in sleepFuture(for: delay).map { delay } })
    /// ```
    ///
    /// For a future of `Result`, ``flatMap(_:)`` builds the next future from a success
    /// only.
    @inlinable
    public func then<Next: Future>(_ next: @escaping (Output) -> Next) -> Then<Self, Next> {
        Then(first: self, next: next)
    }
}
