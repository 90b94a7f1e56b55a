import Testing
import Weft

@Suite("Cooperative budget")
struct CooperativeBudgetTests {
    /// Drains a receiver in one loop, counting its own polls and noting, each
    /// time it is polled, how often the other task has run meanwhile.
    struct Drain: Future {
        var receiver: ChannelReceiver<Int>
        let otherRuns: Box<Int>
        var received = 0
        var polls = 0
        var otherRunsSeen: [Int] = []

        mutating func poll(_ context: inout Context) -> Poll<(received: Int, polls: Int, otherRunsSeen: [Int])> {
            polls += 1
            otherRunsSeen.append(otherRuns.value)
            while true {
                switch receiver.pollNext(&context) {
                case .pending: return .pending
                case .ready(nil): return .ready((received, polls, otherRunsSeen))
                case .ready(_?): received += 1
                }
            }
        }
    }

    @Test("a task draining a full channel yields after its budget so other tasks run in between")
    func drainingYields() throws {
        let runtime = try Runtime()
        let (sender, receiver) = unboundedChannel(of: Int.self)
        for value in 0..<10_000 { try? sender.send(value) }
        _ = consume sender  // the channel ends once drained
        let otherRuns = Box(0)
        let other = runtime.spawn(pollFn { (context: inout Context) -> Poll<Void> in
            otherRuns.value += 1
            if otherRuns.value >= 1_000 { return .ready(()) }
            context.waker.wake()
            return .pending
        })
        let outcome = try runtime.block(on: Drain(receiver: receiver, otherRuns: otherRuns))
        other.abort()
        #expect(outcome.received == 10_000)
        // 10,000 values at 128 per poll need at least 79 polls.
        #expect(outcome.polls >= 10_000 / Budget.perPoll)
        // The other task ran between the drain's polls, not only before or after.
        #expect(Set(outcome.otherRunsSeen).count > 10, "other task runs seen: \(outcome.otherRunsSeen.prefix(20))")
    }

    @Test("outside a task poll the budget is unlimited")
    func unlimitedOutsideTasks() {
        for _ in 0..<(Budget.perPoll * 3) { #expect(Budget.consume()) }
    }
}
