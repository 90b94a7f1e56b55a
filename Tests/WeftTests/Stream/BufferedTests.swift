import Testing
import Weft

@Suite("buffered and bufferUnordered")
struct BufferedTests {
    static let items = 10_000

    @Test("buffered yields 10,000 futures' outputs in the stream's order, none lost or duplicated, with random delays")
    func bufferedKeepsOrder() throws {
        try Runtime.forEachSeed(UInt64(0)..<3) { runtime, seed in
            var random = TestRandom(seed: seed)
            let inFlight = InFlight()
            let outputs = try runtime.block(on: iter(0..<Self.items).map { index in
                inFlight.track(index, delay: .milliseconds(random.next(below: 20)))
            }.buffered(32).collect())
            #expect(outputs == Array(0..<Self.items), "seed \(seed)")
            #expect(inFlight.most <= 32, "seed \(seed)")
        }
    }

    @Test("bufferUnordered yields every one of 10,000 futures' outputs exactly once, with random delays")
    func bufferUnorderedLosesNothing() throws {
        try Runtime.forEachSeed(UInt64(0)..<3) { runtime, seed in
            var random = TestRandom(seed: seed)
            let inFlight = InFlight()
            let outputs = try runtime.block(on: iter(0..<Self.items).map { index in
                inFlight.track(index, delay: .milliseconds(random.next(below: 20)))
            }.bufferUnordered(32).collect())
            #expect(outputs.count == Self.items, "seed \(seed)")
            #expect(outputs.sorted() == Array(0..<Self.items), "seed \(seed)")
            #expect(outputs != Array(0..<Self.items), "seed \(seed): completion order is stream order")
            #expect(inFlight.most == 32, "seed \(seed): \(inFlight.most) in flight")
        }
    }

    @Test("bufferUnordered yields in completion order")
    func completionOrder() throws {
        let runtime = try Runtime(options: .deterministic(seed: 0))
        let outputs = try runtime.block(on: iter([30, 10, 20]).map { delay in
            sleepFuture(for: .milliseconds(delay)).map { delay }
        }.bufferUnordered(3).collect())
        #expect(outputs == [10, 20, 30])
        #expect(runtime.virtualTimeElapsed == .milliseconds(30))
    }

    @Test("buffered counts outputs waiting for an earlier one against its limit: a slow first future holds the rest back")
    func bufferedLimitCountsWaitingOutputs() throws {
        let runtime = try Runtime(options: .deterministic(seed: 0))
        let inFlight = InFlight()
        let started = Box<[Int]>([])
        let outputs = try runtime.block(on: iter(0..<6).map { index in
            started.value.append(index)
            return inFlight.track(index, delay: .milliseconds(index == 0 ? 100 : 1))
        }.buffered(3).collect())
        #expect(outputs == Array(0..<6))
        // 0 (100 ms), 1, 2 finish at 1 ms but wait for 0: nothing else starts before 100 ms.
        #expect(runtime.virtualTimeElapsed == .milliseconds(101))
        #expect(inFlight.most == 3)
    }

    @Test("buffered(.max) keeps order without allocating a slot per possible future (it trapped, allocating .max slots)")
    func bufferedWithoutALimit() throws {
        let runtime = try Runtime(options: .deterministic(seed: 0))
        let outputs = try runtime.block(on: iter([30, 10, 20]).map { delay in
            sleepFuture(for: .milliseconds(delay)).map { delay }
        }.buffered(.max).collect())
        #expect(outputs == [30, 10, 20])
    }

    @Test("dropping buffered drops the stream, the futures running and the outputs not yet yielded")
    func dropLosesBuffered() throws {
        let runtime = try Runtime(options: .deterministic(seed: 0))
        let flags = (0..<3).map { _ in DropFlag() }
        var first: (element: Int?, rest: BufferedStream<MapStream<IterStream<Range<Int>.Iterator>, AnyFuture<Int>>>)? =
            try runtime.block(on: iter(0..<3).map { index in
                index == 0
                    ? AnyFuture(ready(0))
                    : AnyFuture(pendingForever(Int.self, probe: flags[index].makeProbe()))
            }.buffered(3).next())
        #expect(first?.element == 0)
        #expect(!flags[1].isDropped)
        first = nil
        #expect(flags[1].isDropped && flags[2].isDropped)
    }
}
