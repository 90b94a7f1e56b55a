import Testing
import Weft

/// A stream of `gaps` in order, each after waiting its gap in milliseconds
/// (counted from when the previous element was taken).
private func arriving(after gaps: [Int]) -> ThenStream<IterStream<IndexingIterator<[Int]>>, Map<Sleep, Int>> {
    iter(gaps).then { gap in sleepFuture(for: .milliseconds(gap)).map { gap } }
}

@Suite("Timed streams on virtual time: chunks with a timeout, throttle, timeout per item")
struct TimedStreamTests {
    @Test("chunks(_:timeout:) yields a full chunk at once and a partial one when its first element is that old")
    func chunksTimeout() throws {
        try Runtime.forEachSeed(UInt64(0)..<5) { runtime, seed in
            // Elements arrive at 0, 1, 2 | 2 | 22, 23 | 73 ms.
            let stamped = try runtime.block(on: arriving(after: [0, 1, 1, 0, 20, 1, 50])
                .chunks(3, timeout: .milliseconds(10))
                .map { chunk in (chunk, runtime.virtualTimeElapsed!) }
                .collect())
            #expect(stamped.map(\.0) == [[0, 1, 1], [0], [20, 1], [50]], "seed \(seed)")
            #expect(stamped.map(\.1) == [.milliseconds(2), .milliseconds(12), .milliseconds(32), .milliseconds(73)],
                    "seed \(seed)")
        }
    }

    @Test("throttle lets one element through per period, delaying (never dropping) the rest")
    func throttle() throws {
        try Runtime.forEachSeed(UInt64(0)..<5) { runtime, seed in
            let stamped = try runtime.block(on: iter(0..<5).throttle(every: .milliseconds(10))
                .map { element in (element, runtime.virtualTimeElapsed!) }
                .collect())
            #expect(stamped.map(\.0) == [0, 1, 2, 3, 4], "seed \(seed)")
            #expect(stamped.map(\.1) == (0..<5).map { .milliseconds(10 * $0) }, "seed \(seed)")
        }
    }

    @Test("throttle does not delay an element of a source that ticks slower than the period anyway")
    func throttleSlowSource() throws {
        let runtime = try Runtime(options: .deterministic(seed: 0))
        // An interval keeps its own schedule, whether polled or not (a lazy
        // source would only start its next element once throttle polls it).
        let stamps = try runtime.block(on: interval(every: .milliseconds(15)).prefix(3).throttle(every: .milliseconds(10))
            .map { _ in runtime.virtualTimeElapsed! }.collect())
        #expect(stamps == [.zero, .milliseconds(15), .milliseconds(30)])
    }

    @Test("timeout(perItem:) yields a TimedOut each time an element is late, keeps reading, and ends with the stream")
    func timeoutPerItem() throws {
        try Runtime.forEachSeed(UInt64(0)..<5) { runtime, seed in
            // Elements at 5, 30 and 35 ms; a 10 ms limit runs out at 15 and 25.
            let outcome = try runtime.block(on: arriving(after: [5, 25, 5]).timeout(perItem: .milliseconds(10))
                .map { result in (try? result.get(), runtime.virtualTimeElapsed!) }
                .collect())
            #expect(outcome.map(\.0) == [5, nil, nil, 25, 5], "seed \(seed)")
            #expect(outcome.map(\.1) == [5, 15, 25, 30, 35].map { .milliseconds($0) }, "seed \(seed)")
        }
    }

    @Test("dropping a timed stream disarms its timer: the runtime has nothing left to wait for")
    func dropDisarms() throws {
        let runtime = try Runtime(options: .deterministic(seed: 0))
        let first = try runtime.block(on: iter(0..<3).throttle(every: .seconds(3600)).next())
        #expect(first.element == 0)
        // The other side is ready at the select's second poll, by which the
        // throttle has been polled, and its pause armed, at least once.
        let outcome = try runtime.block(on: select(either: first.rest.next(), or: yieldNow().map { runtime.pendingTimerCount }))
        #expect(outcome.right == 1, "the throttle's pause was armed")
        #expect(runtime.pendingTimerCount == 0, "dropped, it is disarmed")
        #expect(runtime.virtualTimeElapsed == .zero)
    }
}
