/// A future that shows its output to a closure before handing it on. See
/// ``Future/inspect(_:)``.
///
/// **Cancellation:** dropping it drops the inner future; the closure is not called.
public struct Inspect<Base: Future>: Future {
    @usableFromInline var base: Base
    @usableFromInline let body: (Base.Output) -> Void

    @inlinable
    init(base: Base, body: @escaping (Base.Output) -> Void) {
        self.base = base
        self.body = body
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Base.Output> {
        guard case .ready(let output) = base.poll(&context) else { return .pending }
        body(output)
        return .ready(output)
    }
}

extension Future {
    /// A future with this one's output, calling `body` with it first (to log
    /// or count it).
    @inlinable
    public func inspect(_ body: @escaping (Output) -> Void) -> Inspect<Self> {
        Inspect(base: self, body: body)
    }
}
