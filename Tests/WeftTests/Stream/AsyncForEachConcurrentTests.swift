import Testing
import Weft

/// The async form: `AsyncSequence.forEachConcurrent(limit:_:)`, a task group
/// whose children run on the caller's loop.
@Suite("forEachConcurrent on an AsyncSequence")
struct AsyncForEachConcurrentTests {
    /// Children running now, and the most there ever were.
    final class Running: Sendable {
        let now = Shared((current: 0, most: 0, finished: 0))
        func enter() { now.update { $0.current += 1; $0.most = max($0.most, $0.current) } }
        func leave() { now.update { $0.current -= 1; $0.finished += 1 } }
    }

    @Test("with a limit, never more than that many children run, every element is handled, and it returns after the last", arguments: [1, 4])
    func limitHonoured(limit: Int) async throws {
        let loop = try LoopThread(name: "async-for-each")
        defer { loop.shutdown() }
        let running = Running()
        try await loop.spawn {
            try await iter(0..<40).values.forEachConcurrent(limit: limit) { element in
                running.enter()
                defer { running.leave() }
                try await value(of: sleepFuture(for: .milliseconds(element % 3 + 1)))
            }
        }.value
        let counts = running.now.value
        #expect(counts.most == limit)
        #expect(counts.finished == 40)
        #expect(counts.current == 0)
    }

    @Test("with a limit, the sequence is not asked for another element while that many children run (it took one ahead and held it)")
    func limitDoesNotPullAhead() async throws {
        let loop = try LoopThread(name: "async-for-each")
        defer { loop.shutdown() }
        let pulled = AtomicCounter()
        let pulledWhileTheFirstRan = Shared(-1)
        try await loop.spawn {
            try await iter(0..<3).map { element -> Int in
                _ = pulled.increment()
                return element
            }.values.forEachConcurrent(limit: 1) { element in
                guard element == 0 else { return }
                try await value(of: sleepFuture(for: .milliseconds(20)))
                pulledWhileTheFirstRan.value = pulled.value
            }
        }.value
        #expect(pulledWhileTheFirstRan.value == 1)
        #expect(pulled.value == 3)
    }

    @Test("without a limit, the children run at once and all finish before it returns")
    func unbounded() async throws {
        let loop = try LoopThread(name: "async-for-each")
        defer { loop.shutdown() }
        let running = Running()
        // A barrier instead of a timed sleep: each child waits until all 20 have
        // entered, however slowly the loaded machine starts them. Children run
        // one after the other never get there: the first waits out the shared
        // deadline, the others find it passed, and `most` stays below 20.
        let barrierDeadline = ContinuousClock.now + .seconds(10)
        try await loop.spawn {
            try await iter(0..<20).values.forEachConcurrent(limit: nil) { _ in
                running.enter()
                defer { running.leave() }
                while running.now.value.most < 20, ContinuousClock.now < barrierDeadline {
                    try await value(of: sleepFuture(for: .milliseconds(1)))
                }
            }
        }.value
        #expect(running.now.value.finished == 20)
        #expect(running.now.value.most == 20, "the children ran one after the other")
    }

    @Test("a child's error is thrown, after the other children were cancelled", arguments: [nil, 3] as [Int?])
    func firstErrorThrown(limit: Int?) async throws {
        let loop = try LoopThread(name: "async-for-each")
        defer { loop.shutdown() }
        let cancelled = AtomicCounter()
        let outcome = await loop.spawn { () async -> Planted? in
            do {
                try await iter(0..<3).values.forEachConcurrent(limit: limit) { element in
                    if element == 2 { throw Planted(2) }
                    do {
                        try await value(of: sleepFuture(for: .seconds(30)))
                    } catch {
                        cancelled.increment()
                        throw error
                    }
                }
                return nil
            } catch {
                return error as? Planted
            }
        }.result
        #expect(try outcome.get() == Planted(2))
        #expect(cancelled.value == 2)
    }
}
