/// One child of a join: the future until it finishes, then its output until taken.
///
/// Two optionals rather than an enum so that `future!.poll` mutates the child
/// in place (an enum payload is copied out and back on every poll).
@usableFromInline
struct MaybeDone<F: Future> {
    @usableFromInline var future: F?
    @usableFromInline var output: F.Output?

    @inlinable
    init(_ future: F) { self.future = future }

    /// Polls the child if it is still running; true once its output is stored.
    @inlinable
    mutating func poll(_ context: inout Context) -> Bool {
        if output != nil { return true }
        precondition(future != nil, "join polled after it completed")
        guard case .ready(let value) = future!.poll(&context) else { return false }
        future = nil
        output = value
        return true
    }

    @inlinable
    mutating func take() -> F.Output {
        guard let value = output.take() else { preconditionFailure("join output taken twice") }
        return value
    }
}

/// Which child a join polls first: the next one at each poll, as Tokio's
/// `join!` does. In argument order every time, a child that spent the task's
/// ``Budget`` at every poll (a loop draining a channel kept full) went first
/// each time and left none to the children after it, whose leaves then
/// yielded: they waited as long as it ran.
@usableFromInline
struct JoinRotation {
    @usableFromInline var first = 0

    @inlinable
    init() {}

    /// The child to poll first this time, of `count`; the next poll starts
    /// with the one after it.
    @inlinable
    mutating func next(of count: Int) -> Int {
        let this = first
        first = this + 1 < count ? this + 1 : 0
        return this
    }
}

/// Two futures run concurrently in one task; ready when both are, with both
/// outputs. See ``join(_:_:)``.
///
/// Every poll polls each unfinished child with the task's context, starting
/// with each in turn (so that a child that spends the task's budget cannot starve the others).
/// **Cancellation:** dropping it drops every unfinished child.
public struct Join2<A: Future, B: Future>: Future {
    @usableFromInline var a: MaybeDone<A>
    @usableFromInline var b: MaybeDone<B>
    @usableFromInline var rotation = JoinRotation()

    @inlinable
    init(_ a: A, _ b: B) {
        self.a = MaybeDone(a)
        self.b = MaybeDone(b)
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<(A.Output, B.Output)> {
        var aDone = false
        var bDone = false
        let first = rotation.next(of: 2)
        for step in 0..<2 {
            if (first + step) % 2 == 0 { aDone = a.poll(&context) } else { bDone = b.poll(&context) }
        }
        guard aDone && bDone else { return .pending }
        return .ready((a.take(), b.take()))
    }
}

/// Three futures run concurrently in one task, each polled first in turn
/// (so that a child that spends the task's budget cannot starve the others). See
/// ``join(_:_:_:)``.
///
/// **Cancellation:** dropping it drops every unfinished child.
public struct Join3<A: Future, B: Future, C: Future>: Future {
    @usableFromInline var a: MaybeDone<A>
    @usableFromInline var b: MaybeDone<B>
    @usableFromInline var c: MaybeDone<C>
    @usableFromInline var rotation = JoinRotation()

    @inlinable
    init(_ a: A, _ b: B, _ c: C) {
        self.a = MaybeDone(a)
        self.b = MaybeDone(b)
        self.c = MaybeDone(c)
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<(A.Output, B.Output, C.Output)> {
        var aDone = false
        var bDone = false
        var cDone = false
        let first = rotation.next(of: 3)
        for step in 0..<3 {
            switch (first + step) % 3 {
            case 0: aDone = a.poll(&context)
            case 1: bDone = b.poll(&context)
            default: cDone = c.poll(&context)
            }
        }
        guard aDone && bDone && cDone else { return .pending }
        return .ready((a.take(), b.take(), c.take()))
    }
}

/// A join child in its own box: parameter packs cannot yet hold the enum inline
/// (the compiler crashes building the output tuple), so each child costs one
/// allocation. `Join2`/`Join3` avoid it for the common arities.
@usableFromInline
final class JoinSlot<F: Future> {
    @usableFromInline var state: MaybeDone<F>

    @inlinable
    init(_ future: F) {
        state = MaybeDone(future)
    }

    @inlinable
    init(state: MaybeDone<F>) {
        self.state = state
    }

    /// A slot of its own holding a copy of this one's child.
    @inlinable
    func copy() -> JoinSlot<F> { JoinSlot(state: state) }
}

/// What tells a variadic join (or try-join) whether another copy of it shares
/// its boxed children: only the copy that holds it alone polls them. A copy
/// that finds it shared (`isKnownUniquelyReferenced`) first takes copies of
/// the children, so copies of a join are independent, as copies of
/// ``Join2`` are: dropping one drops its children (a copy passed to `select`
/// and dropped there left a timer armed while the original lived), and the
/// original can still be polled (it trapped, "polled after it completed").
@usableFromInline
final class JoinOwner {
    @inlinable
    init() {}
}

@inlinable
func takeOutput<F: Future>(_ slot: JoinSlot<F>) -> F.Output {
    slot.state.take()
}

/// Any number of futures run concurrently in one task, each polled first in
/// turn (so that a child that spends the task's budget cannot starve the others), ready
/// with a tuple of their outputs. See
/// ``join(_:_:_:_:_:)``.
///
/// **Cancellation:** dropping it drops every unfinished child.
public struct Join<each F: Future>: Future {
    @usableFromInline var slots: (repeat JoinSlot<each F>)
    @usableFromInline var owner = JoinOwner()
    @usableFromInline var rotation = JoinRotation()

    @inlinable
    init(_ futures: repeat each F) {
        slots = (repeat JoinSlot(each futures))
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<(repeat (each F).Output)> {
        if !isKnownUniquelyReferenced(&owner) {
            owner = JoinOwner()
            slots = (repeat (each slots).copy())
        }
        var count = 0
        for _ in repeat each slots { count += 1 }
        let first = rotation.next(of: count)
        var allDone = true
        // From the first in turn to the last, then those before it.
        var index = 0
        for slot in repeat each slots {
            if index >= first && !slot.state.poll(&context) { allDone = false }
            index += 1
        }
        index = 0
        for slot in repeat each slots {
            guard index < first else { break }
            if !slot.state.poll(&context) { allDone = false }
            index += 1
        }
        guard allDone else { return .pending }
        return .ready((repeat takeOutput(each slots)))
    }
}

/// Runs two futures concurrently in the current task; ready with both outputs.
@inlinable
public func join<A: Future, B: Future>(_ a: A, _ b: B) -> Join2<A, B> {
    Join2(a, b)
}

/// Runs three futures concurrently in the current task; ready with all outputs.
@inlinable
public func join<A: Future, B: Future, C: Future>(_ a: A, _ b: B, _ c: C) -> Join3<A, B, C> {
    Join3(a, b, c)
}

/// Runs any number of futures concurrently in the current task; ready with a
/// tuple of their outputs, in argument order.
@inlinable
public func join<A: Future, B: Future, C: Future, D: Future, each Rest: Future>(
    _ a: A, _ b: B, _ c: C, _ d: D, _ rest: repeat each Rest
) -> Join<A, B, C, D, repeat each Rest> {
    Join(a, b, c, d, repeat each rest)
}
