import Testing
import Weft

/// A child that spends the task's whole budget at every poll (as a loop
/// draining a channel kept full does), and its siblings: each join polls a
/// different child first at each poll, so the others get a budget too
/// (Tokio's `join!` fairness, tokio-rs/tokio#4612).
@Suite("Joins give every child a turn at the budget")
struct JoinFairnessTests {
    /// A future that takes every unit of the budget at each poll, wakes its
    /// task and stays pending, until its 1,000th poll (which bounds a test
    /// against the bug). Counts its polls in `polls`.
    static func hog(_ polls: Counter) -> PollFn<Int> {
        pollFn { (context: inout Context) -> Poll<Int> in
            polls.value += 1
            if polls.value == 1_000 { return .ready(polls.value) }
            while Budget.consume() {}
            context.waker.wake()
            return .pending
        }
    }

    /// A receive of a value already sent, ready with how many polls of the
    /// hog it waited: a leaf that takes a unit of the budget.
    static func receive(_ polls: Counter) -> some Future<Int> {
        let (sender, receiver) = unboundedChannel(of: Int.self)
        try? sender.send(7)
        return receiver.next().map { _ in polls.value }
    }

    // Before the fix that came with these tests, every receive waited the
    // hog's 1,000 polls: polled after it each time, it found the budget spent.
    @Test("join of two, three and five: a receive behind the hog is served within two of its polls")
    func joins() throws {
        let runtime = try Runtime()
        let polls = Counter()
        let (_, second) = try runtime.guardedBlock(on: join(Self.hog(polls), Self.receive(polls)))
        #expect(second <= 2, "the receive waited \(second) polls of the hog")
        polls.value = 0
        let (_, b, c) = try runtime.guardedBlock(on: join(Self.hog(polls), Self.receive(polls), Self.receive(polls)))
        #expect(b <= 3 && c <= 3, "the receives waited \(b) and \(c) polls of the hog")
        polls.value = 0
        let (_, d, e, f, g) = try runtime.guardedBlock(on: join(Self.hog(polls), Self.receive(polls), Self.receive(polls),
                                                                Self.receive(polls), Self.receive(polls)))
        #expect([d, e, f, g].allSatisfy { $0 <= 5 }, "the receives waited \([d, e, f, g]) polls of the hog")
    }

    @Test("tryJoin of two, three and five: a receive behind the hog is served within a few of its polls")
    func tryJoins() throws {
        typealias Outcome = Result<Int, WeftError>
        let runtime = try Runtime()
        let polls = Counter()
        func hog() -> some Future<Outcome> { Self.hog(polls).map { Outcome.success($0) } }
        func receive() -> some Future<Outcome> { Self.receive(polls).map { Outcome.success($0) } }
        let (_, second) = try runtime.guardedBlock(on: tryJoin(hog(), receive())).get()
        #expect(second <= 2, "the receive waited \(second) polls of the hog")
        polls.value = 0
        let (_, b, c) = try runtime.guardedBlock(on: tryJoin(hog(), receive(), receive())).get()
        #expect(b <= 3 && c <= 3, "the receives waited \(b) and \(c) polls of the hog")
        polls.value = 0
        let (_, d, e, f, g) = try runtime.guardedBlock(on: tryJoin(hog(), receive(), receive(), receive(), receive())).get()
        #expect([d, e, f, g].allSatisfy { $0 <= 5 }, "the receives waited \([d, e, f, g]) polls of the hog")
    }

    // Before the fix, the hog, woken first at each of its polls, was polled
    // first at the next one too: the receive waited all its 1,000 polls.
    @Test("joinAll: a receive woken after the hog is served within two of its polls")
    func joinAll() throws {
        let runtime = try Runtime()
        let polls = Counter()
        let outputs = try runtime.guardedBlock(on: Weft.joinAll([Self.hog(polls).boxed(), Self.receive(polls).boxed()]))
        #expect(outputs[1] <= 2, "the receive waited \(outputs[1]) polls of the hog")
    }
}
