import Testing
import Weft

/// A stream of `0..<count`, one element per poll, pending (with a self-wake)
/// between elements so that consumers must cope with `.pending`.
private struct Numbers: PollStream {
    let count: Int
    var next = 0
    var pendingTurn = false

    init(_ count: Int) { self.count = count }

    mutating func pollNext(_ context: inout Context) -> Poll<Int?> {
        if next == count { return .ready(nil) }
        pendingTurn.toggle()
        if pendingTurn {
            context.waker.wake()
            return .pending
        }
        defer { next += 1 }
        return .ready(next)
    }
}

@Suite("Stream combinators")
struct StreamCombinatorTests {
    @Test("fold collects every element of a stream that ends")
    func foldCollects() throws {
        let runtime = try Runtime()
        let collected = try runtime.block(on: Numbers(5).fold([Int]()) { $0 + [$1] })
        #expect(collected == [0, 1, 2, 3, 4])
    }

    @Test("map, filter and prefix compose")
    func mapFilterPrefix() throws {
        let runtime = try Runtime()
        let result = try runtime.block(on:
            Numbers(100).filter { $0 % 3 == 0 }.map { "#\($0)" }.prefix(4).fold("") { $0 + $1 }
        )
        #expect(result == "#0#3#6#9")
    }

    @Test("prefix stops without polling its base again")
    func prefixStopsPolling() {
        let polls = Counter()
        struct Counting: PollStream {
            let polls: Counter
            mutating func pollNext(_ context: inout Context) -> Poll<Int?> {
                polls.value += 1
                return .ready(polls.value)
            }
        }
        var stream = Counting(polls: polls).prefix(2)
        var context = Context(waker: .noop)
        #expect(stream.pollNext(&context) == .ready(1))
        #expect(stream.pollNext(&context) == .ready(2))
        #expect(stream.pollNext(&context) == .ready(nil))
        #expect(stream.pollNext(&context) == .ready(nil))
        #expect(polls.value == 2)
    }

    @Test("next() yields the first element and the rest of the stream")
    func nextHandsBackTheRest() throws {
        let runtime = try Runtime()
        let (first, second, end) = try runtime.block(on:
            Numbers(2).next().then { first, rest in
                rest.next().then { second, rest in
                    rest.next().map { (first, second, $0.element) }
                }
            }
        )
        #expect(first == 0)
        #expect(second == 1)
        #expect(end == nil)
    }

    @Test("filter with no match ends when the base ends")
    func filterNoMatch() throws {
        let runtime = try Runtime()
        let count = try runtime.block(on: Numbers(10).filter { $0 > 100 }.fold(0) { count, _ in count + 1 })
        #expect(count == 0)
    }
}
