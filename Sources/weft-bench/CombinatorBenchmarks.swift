import Weft

// MARK: - for-each-concurrent, buffer-unordered (issue 22)

// Both run `n` futures, each ready after one yield, at most `limit` at once,
// and measure the same futures driven through a FutureSet by hand first, in
// the same run: the combinator's own cost is the difference.

/// The baseline: `n` yields kept `limit` at a time in a FutureSet, by hand.
struct FutureSetByHand: Future {
    var remaining: Int
    let limit: Int
    var set = FutureSet<YieldNow>()
    var finished = 0

    mutating func poll(_ context: inout Context) -> Poll<Int> {
        while true {
            while remaining > 0 && set.count < limit {
                remaining -= 1
                set.insert(yieldNow())
            }
            switch set.pollNext(&context) {
            case .ready(.some): finished += 1
            case .ready(nil): return .ready(finished)
            case .pending: return .pending
            }
        }
    }
}

/// Runs `future` on a fresh runtime and reports its time per item as `name`.
func measureItems<F: Future>(_ name: String, n: Int, _ future: F) throws {
    let runtime = try Runtime()
    let start = ContinuousClock.now
    _ = try runtime.block(on: future)
    report(name, n: n, wallNanoseconds: nanosecondsSince(start), bytesPerOp: 0)
}

func benchForEachConcurrent(n: Int, limit: Int) throws {
    try measureItems("for-each-concurrent-futureset", n: n, FutureSetByHand(remaining: n, limit: limit))
    try measureItems("for-each-concurrent", n: n, iter(0..<n).forEachConcurrent(limit: limit) { _ in yieldNow() })
}

func benchBufferUnordered(n: Int, limit: Int) throws {
    try measureItems("buffer-unordered-futureset", n: n, FutureSetByHand(remaining: n, limit: limit))
    try measureItems("buffer-unordered", n: n,
                     iter(0..<n).map { _ in yieldNow() }.bufferUnordered(limit).fold(0) { count, _ in count + 1 })
}
