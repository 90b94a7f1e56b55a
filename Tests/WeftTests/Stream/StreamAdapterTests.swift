import Testing
import Weft

/// `0..<count`, pending (with a self-wake) before each element, so that the
/// adapters must cope with `.pending` between elements.
private func slowNumbers(_ count: Int, tag: Int = 0) -> PollStreamFn<Int> {
    var next = 0
    var pendingTurn = false
    return pollStreamFn { context in
        if next == count { return .ready(nil) }
        pendingTurn.toggle()
        if pendingTurn {
            context.waker.wake()
            return .pending
        }
        defer { next += 1 }
        return .ready(tag + next)
    }
}

/// A stream that counts its polls and ends after `count` elements.
private func countingNumbers(_ count: Int, polls: Counter) -> PollStreamFn<Int> {
    var next = 0
    return pollStreamFn { _ in
        polls.value += 1
        guard next < count else { return .ready(nil) }
        defer { next += 1 }
        return .ready(next)
    }
}

@Suite("Stream adapters: then, filterMap, enumerated, skip, take, chain, zip, merge, flatten, fuse, collect, iter, pollStreamFn")
struct StreamAdapterTests {
    @Test("iter yields a sequence's elements in order, and collect gathers them")
    func iterCollect() throws {
        let runtime = try Runtime()
        #expect(try runtime.block(on: iter(["a", "b", "c"]).collect()) == ["a", "b", "c"])
        #expect(try runtime.block(on: iter([Int]()).collect()) == [])
    }

    @Test("iter over a long sequence yields to other tasks: its budget bounds each poll")
    func iterYields() throws {
        let runtime = try Runtime(options: .deterministic(seed: 0))
        let otherRan = Box(false)
        runtime.spawn(pollFn { _ -> Poll<Void> in
            otherRan.value = true
            return .ready(())
        })
        let seenBeforeOther = Counter()
        try runtime.block(on: iter(0..<10_000).forEach { _ in
            if !otherRan.value { seenBeforeOther.value += 1 }
            return ready(())
        })
        #expect(otherRan.value)
        #expect(seenBeforeOther.value < 10_000, "the other task waited for the whole sequence")
    }

    @Test("then runs each element's future in turn and yields the outputs in order")
    func thenInOrder() throws {
        try Runtime.forEachSeed(UInt64(0)..<5) { runtime, seed in
            let inFlight = InFlight()
            let outputs = try runtime.block(on: slowNumbers(6).then { element in
                inFlight.track(element * 10, delay: .milliseconds(6 - element))
            }.collect())
            #expect(outputs == [0, 10, 20, 30, 40, 50], "seed \(seed)")
            #expect(inFlight.most == 1, "seed \(seed)")
        }
    }

    @Test("filterMap keeps the non-nil results, in order")
    func filterMapKeeps() throws {
        let runtime = try Runtime()
        let outputs = try runtime.block(on: slowNumbers(10).filterMap { $0 % 3 == 0 ? "#\($0)" : nil }.collect())
        #expect(outputs == ["#0", "#3", "#6", "#9"])
    }

    @Test("enumerated pairs each element with its offset")
    func enumeratedOffsets() throws {
        let runtime = try Runtime()
        let pairs = try runtime.block(on: slowNumbers(3, tag: 100).enumerated().collect())
        #expect(pairs.map(\.offset) == [0, 1, 2])
        #expect(pairs.map(\.element) == [100, 101, 102])
    }

    @Test("skip leaves out the first elements; skip(while:) leaves out a leading run only")
    func skipLeading() throws {
        let runtime = try Runtime()
        #expect(try runtime.block(on: slowNumbers(6).skip(4).collect()) == [4, 5])
        #expect(try runtime.block(on: slowNumbers(3).skip(10).collect()) == [])
        #expect(try runtime.block(on: iter([1, 2, 5, 1, 7]).skip(while: { $0 < 3 }).collect()) == [5, 1, 7])
    }

    @Test("take(while:) ends at the first element that fails, without polling the stream again")
    func takeWhile() {
        let polls = Counter()
        var stream = countingNumbers(100, polls: polls).take(while: { $0 < 3 })
        for expected in 0..<3 { #expect(pollNextOnce(&stream) == .ready(expected)) }
        #expect(pollNextOnce(&stream) == .ready(nil))
        #expect(pollNextOnce(&stream) == .ready(nil))
        #expect(polls.value == 4)
    }

    @Test("take(until:) yields elements until the future finishes, then ends and drops the stream")
    func takeUntil() throws {
        try Runtime.forEachSeed(UInt64(0)..<5) { runtime, seed in
            let flag = DropFlag()
            let ticks = try runtime.block(on: interval(every: .milliseconds(10))
                .map { [probe = flag.makeProbe()] tick in probe.touch(); return tick }
                .take(until: sleepFuture(for: .milliseconds(35)))
                .collect())
            #expect(ticks == [0, 1, 2, 3], "seed \(seed)")
            #expect(flag.isDropped, "seed \(seed)")
            #expect(runtime.virtualTimeElapsed == .milliseconds(35), "seed \(seed)")
        }
    }

    @Test("take(until:) ends at once when the future is ready, even with elements ready")
    func takeUntilReady() throws {
        let runtime = try Runtime()
        #expect(try runtime.block(on: iter(0..<10).take(until: ready(())).collect()) == [])
    }

    @Test("chain yields the first stream's elements, then the second's")
    func chainInTurn() throws {
        let runtime = try Runtime()
        #expect(try runtime.block(on: slowNumbers(2).chain(slowNumbers(2, tag: 10)).collect()) == [0, 1, 10, 11])
    }

    @Test("zip pairs elements in order and ends when the shorter stream ends")
    func zipPairs() throws {
        let runtime = try Runtime(options: .deterministic(seed: 1))
        let pairs = try runtime.block(on: slowNumbers(5).zip(iter(["a", "b", "c"]).then { text in
            sleepFuture(for: .milliseconds(3)).map { text }
        }).collect())
        #expect(pairs.map(\.0) == [0, 1, 2])
        #expect(pairs.map(\.1) == ["a", "b", "c"])
    }

    @Test("zip ending on its second stream drops the element it took from the first, as documented: a receiver zipped then read again has lost it")
    func zipEndDropsTheHeldElement() throws {
        let runtime = try Runtime()
        let (sender, receiver) = unboundedChannel(of: Int.self)
        for value in 1...4 { try sender.send(value) }
        let pairs = try runtime.block(on: receiver.zip(iter(["a", "b"])).collect())
        #expect(pairs.map(\.0) == [1, 2])
        #expect(receiver.tryReceive() == 4, "3 was taken by zip and dropped at its end")
        #expect(receiver.tryReceive() == nil)
    }

    @Test("merge takes turns between two streams that are always ready")
    func mergeAlternates() throws {
        let runtime = try Runtime()
        let merged = try runtime.block(on: iter(Array(repeating: "a", count: 50))
            .merge(iter(Array(repeating: "b", count: 50))).prefix(20).collect())
        #expect(merged.filter { $0 == "a" }.count == 10)
        #expect(merged.filter { $0 == "b" }.count == 10)
        #expect(zip(merged, merged.dropFirst()).allSatisfy { $0 != $1 }, "\(merged)")
    }

    @Test("merge over many seeds and random timing: every element of both streams arrives, each stream's in order, the interleaving varies")
    func mergeOverSeeds() throws {
        var interleavings = Set<[Int]>()
        try Runtime.forEachSeed(UInt64(0)..<30) { runtime, seed in
            var random = TestRandom(seed: seed)
            let left = iter(0..<20).then { element in sleepFuture(for: .milliseconds(random.next(below: 4))).map { element } }
            var random2 = TestRandom(seed: seed &+ 1000)
            let right = iter(100..<120).then { element in sleepFuture(for: .milliseconds(random2.next(below: 4))).map { element } }
            let merged = try runtime.block(on: left.merge(right).collect())
            #expect(merged.filter { $0 < 100 } == Array(0..<20), "seed \(seed)")
            #expect(merged.filter { $0 >= 100 } == Array(100..<120), "seed \(seed)")
            interleavings.insert(merged)
        }
        #expect(interleavings.count >= 10, "only \(interleavings.count) interleavings in 30 seeds")
    }

    @Test("merge ends only when both streams have ended, and polls neither again after it ended")
    func mergeEnds() {
        let leftPolls = Counter()
        let rightPolls = Counter()
        var merged = countingNumbers(1, polls: leftPolls).merge(countingNumbers(3, polls: rightPolls))
        var outputs: [Int] = []
        while case .ready(let element?) = pollNextOnce(&merged) { outputs.append(element) }
        #expect(outputs.sorted() == [0, 0, 1, 2])
        #expect(leftPolls.value == 2)
        #expect(rightPolls.value == 4)
    }

    @Test("flatten yields each inner stream's elements in turn; flatMap does so for a stream made of each element")
    func flattenInTurn() throws {
        let runtime = try Runtime()
        #expect(try runtime.block(on: iter([slowNumbers(2), slowNumbers(0), slowNumbers(3, tag: 10)]).flatten().collect())
                == [0, 1, 10, 11, 12])
        #expect(try runtime.block(on: slowNumbers(3).flatMap { iter(Array(repeating: $0, count: $0)) }.collect())
                == [1, 2, 2])
    }

    @Test("a fused stream yields nil again after it ended without polling its stream, and says it terminated")
    func fusedEnd() {
        let polls = Counter()
        var stream = countingNumbers(2, polls: polls).fuse()
        #expect(pollNextOnce(&stream) == .ready(0))
        #expect(pollNextOnce(&stream) == .ready(1))
        #expect(!stream.isTerminated)
        #expect(pollNextOnce(&stream) == .ready(nil))
        #expect(stream.isTerminated)
        for _ in 0..<3 { #expect(pollNextOnce(&stream) == .ready(nil)) }
        #expect(polls.value == 3)
    }

    @Test("chunks groups consecutive elements, the last chunk shorter")
    func chunksInGroups() throws {
        let runtime = try Runtime()
        #expect(try runtime.block(on: slowNumbers(7).chunks(3).collect()) == [[0, 1, 2], [3, 4, 5], [6]])
        #expect(try runtime.block(on: slowNumbers(4).chunks(2).collect()) == [[0, 1], [2, 3]])
        #expect(try runtime.block(on: slowNumbers(0).chunks(2).collect()) == [])
        // A size past any count (batching by time or end alone) reserves no
        // room for it up front (`.max` trapped).
        #expect(try runtime.block(on: slowNumbers(3).chunks(.max).collect()) == [[0, 1, 2]])
        #expect(try runtime.block(on: slowNumbers(3).chunks(.max, timeout: .seconds(10)).collect()) == [[0, 1, 2]])
    }
}
