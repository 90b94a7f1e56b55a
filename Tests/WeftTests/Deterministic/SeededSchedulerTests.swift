import Testing
import Weft

/// The deterministic mode's seeded scheduler: the same seed replays the same
/// interleaving, and many seeds explore many. Every expectation names its seed
/// so a failure can be replayed with `Runtime(options: .deterministic(seed:))`.
@Suite("Deterministic mode: the seeded scheduler")
struct SeededSchedulerTests {
    /// Five tasks of three steps each, yielding between steps: the order in which
    /// their steps ran.
    static func interleaving(seed: UInt64) throws -> [String] {
        let runtime = try Runtime(options: .deterministic(seed: seed))
        let log = Box<[String]>([])
        let tasks = (0..<5).map { task in
            var step = 0
            return runtime.spawn(pollFn { context -> Poll<Void> in
                // Each poll is one step; between steps the task yields.
                log.value.append("\(task).\(step)")
                step += 1
                if step == 3 { return .ready(()) }
                context.waker.wake()
                return .pending
            })
        }
        _ = try runtime.block(on: joinAll(tasks))
        return log.value
    }

    @Test("the same seed replays the same interleaving; 50 seeds explore several")
    func replayAndExplore() throws {
        var seen = Set<[String]>()
        for seed in UInt64(0)..<50 {
            let first = try Self.interleaving(seed: seed)
            let again = try Self.interleaving(seed: seed)
            #expect(first == again, "seed \(seed) did not replay")
            #expect(first.count == 15, "seed \(seed)")
            for task in 0..<5 {
                let steps = first.filter { $0.hasPrefix("\(task).") }
                #expect(steps == ["\(task).0", "\(task).1", "\(task).2"], "seed \(seed): a task's own steps stay in order")
            }
            seen.insert(first)
        }
        #expect(seen.count >= 10, "only \(seen.count) distinct interleavings in 50 seeds")
    }

    @Test("select over many seeds: when both branches are ready, each wins under some seed, and a seed always picks the same")
    func selectFairnessBySeed() throws {
        var winners = Set<String>()
        try Runtime.forEachSeed(UInt64(100)..<140) { runtime, seed in
            let pick = { try runtime.block(on: select(either: ready("left"), or: ready("right"))) }
            let winner: String
            switch try pick() {
            case .left(let value), .right(let value): winner = value
            }
            let replay = try Runtime(options: .deterministic(seed: seed))
            let again: String
            switch try replay.block(on: select(either: ready("left"), or: ready("right"))) {
            case .left(let value), .right(let value): again = value
            }
            #expect(winner == again, "seed \(seed)")
            winners.insert(winner)
        }
        #expect(winners == ["left", "right"])
    }

    @Test("under every seed, a timeout whose inner sleep is due in the same millisecond yields the inner result")
    func timeoutTieGoesToInner() throws {
        try Runtime.forEachSeed(UInt64(0)..<20) { runtime, seed in
            let outcome = try runtime.block(on: timeoutFuture(.milliseconds(50), sleepFuture(for: .milliseconds(50)).map { "inner" }))
            #expect((try? outcome.get()) == "inner", "seed \(seed): \(outcome)")
            #expect(runtime.virtualTimeElapsed == .milliseconds(50), "seed \(seed)")
        }
    }

    @Test("three producers on a bounded channel: every seed delivers each producer's messages in order and none lost; seeds vary the merge")
    func channelInterleavings() throws {
        var merges = Set<[Int]>()
        try Runtime.forEachSeed(UInt64(0)..<60) { runtime, seed in
            let (sender, receiver) = boundedChannel(of: Int.self, capacity: 1)
            for producer in 0..<3 {
                let mine = sender.clone()
                var next = 0
                var sending: ChannelSend<Int>?
                runtime.spawn(pollFn { context -> Poll<Void> in
                    while true {
                        if sending == nil {
                            if next == 4 { return .ready(()) }
                            sending = mine.sendFuture(producer * 100 + next)
                        }
                        guard case .ready = sending!.poll(&context) else { return .pending }
                        sending = nil
                        next += 1
                    }
                })
            }
            _ = consume sender
            let received = try runtime.block(on: receiver.fold([Int]()) { $0 + [$1] })
            #expect(received.count == 12, "seed \(seed): \(received)")
            for producer in 0..<3 {
                #expect(received.filter { $0 / 100 == producer } == (0..<4).map { producer * 100 + $0 },
                        "seed \(seed): producer \(producer) out of order in \(received)")
            }
            merges.insert(received)
        }
        #expect(merges.count >= 5, "only \(merges.count) distinct merges in 60 seeds")
    }

    @Test("a watch send, a broadcast send and a token's cancel wake their eight waiting tasks in one order per seed, run after run (in a dictionary's order, which moved with the subscriptions' addresses, the same seed gave several)", arguments: ["watch", "broadcast", "token"])
    func wakeOrderReplays(kind: String) throws {
        var ballast: [Box<Int>] = []  // moves the next run's objects to other addresses
        var orders = Set<[Int]>()
        for run in 0..<20 {
            ballast += (0...(run * 3)).map { Box($0) }
            let runtime = try Runtime(options: .deterministic(seed: 7))
            let log = Box<[Int]>([])
            let (watch, _) = watchChannel(initial: 0)
            let (broadcast, _) = broadcastChannel(of: Int.self, capacity: 4)
            let token = CancellationToken()
            let tasks = (0..<8).map { index -> JoinHandle<Void> in
                switch kind {
                case "watch":
                    let receiver = watch.subscribe()
                    return runtime.spawn(receiver.changedFuture().map { _ in log.value.append(index) })
                case "broadcast":
                    var receiver = broadcast.subscribe()
                    return runtime.spawn(pollFn { context -> Poll<Void> in
                        guard case .ready = receiver.pollNext(&context) else { return .pending }
                        log.value.append(index)
                        return .ready(())
                    })
                default:
                    return runtime.spawn(token.child().cancelledFuture().map { _ in log.value.append(index) })
                }
            }
            try runtime.block(on: yields(40))  // every task waits
            switch kind {
            case "watch": try watch.send(1)
            case "broadcast": _ = try broadcast.send(1)
            default: token.cancel()
            }
            _ = try runtime.block(on: joinAll(tasks))
            #expect(log.value.count == 8)
            orders.insert(log.value)
        }
        #expect(orders.count == 1, "seed 7 gave \(orders.count) orders: \(orders)")
        _ = ballast
    }

    @Test("forEachSeed rethrows the first failure, after the seeds before it ran")
    func forEachSeedRethrows() {
        struct Planted: Error {}
        var ran: [UInt64] = []
        #expect(throws: Planted.self) {
            try Runtime.forEachSeed(UInt64(0)..<10) { _, seed in
                ran.append(seed)
                if seed == 3 { throw Planted() }
            }
        }
        #expect(ran == [0, 1, 2, 3])
    }
}
