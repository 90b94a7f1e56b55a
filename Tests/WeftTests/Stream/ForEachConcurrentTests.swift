import Testing
import Weft

@Suite("forEach, forEachConcurrent and tryForEachConcurrent")
struct ForEachConcurrentTests {
    @Test("forEach runs one element's future at a time, in order, and ends after the last one finished")
    func forEachSequential() throws {
        try Runtime.forEachSeed(UInt64(0)..<5) { runtime, seed in
            let inFlight = InFlight()
            let seen = Box<[Int]>([])
            try runtime.block(on: iter(0..<20).forEach { element in
                seen.value.append(element)
                return inFlight.track((), delay: .milliseconds(element % 3))
            })
            #expect(seen.value == Array(0..<20), "seed \(seed)")
            #expect(inFlight.most == 1, "seed \(seed)")
            #expect(inFlight.finished == 20, "seed \(seed)")
        }
    }

    @Test("forEachConcurrent never has more than its limit in flight, and reaches it under load", arguments: [1, 3, 16])
    func limitHonoured(limit: Int) throws {
        try Runtime.forEachSeed(UInt64(0)..<10) { runtime, seed in
            var random = TestRandom(seed: seed)
            let inFlight = InFlight()
            try runtime.block(on: iter(0..<300).forEachConcurrent(limit: limit) { _ in
                inFlight.track((), delay: .milliseconds(random.next(below: 10)))
            })
            #expect(inFlight.most == limit, "seed \(seed): at most \(inFlight.most) in flight")
            #expect(inFlight.finished == 300, "seed \(seed)")
            #expect(inFlight.current == 0, "seed \(seed)")
        }
    }

    @Test("forEachConcurrent without a limit takes every element the stream has ready")
    func unbounded() throws {
        let runtime = try Runtime(options: .deterministic(seed: 4))
        let inFlight = InFlight()
        try runtime.block(on: iter(0..<100).forEachConcurrent(limit: nil) { _ in
            inFlight.track((), delay: .milliseconds(10))
        })
        #expect(inFlight.most == 100)
        #expect(runtime.virtualTimeElapsed == .milliseconds(10), "they did not run concurrently")
    }

    @Test("when the stream ends while futures are in flight, forEachConcurrent ends only after they finish, none dropped")
    func streamEndsWhileInFlight() throws {
        try Runtime.forEachSeed(UInt64(0)..<10) { runtime, seed in
            let inFlight = InFlight()
            let streamEnded = Box(false)
            var remaining = 5
            let source = pollStreamFn { _ -> Poll<Int?> in
                if remaining == 0 {
                    streamEnded.value = true
                    return .ready(nil)
                }
                remaining -= 1
                return .ready(remaining)
            }
            try runtime.block(on: source.forEachConcurrent(limit: nil) { element in
                inFlight.track((), delay: .milliseconds(10 + element))
            })
            #expect(streamEnded.value, "seed \(seed)")
            #expect(inFlight.finished == 5, "seed \(seed): futures in flight were cut short")
            #expect(runtime.virtualTimeElapsed == .milliseconds(14), "seed \(seed)")
        }
    }

    @Test("the stream is not polled while the limit is reached")
    func streamNotPolledAtLimit() throws {
        let runtime = try Runtime(options: .deterministic(seed: 0))
        let inFlight = InFlight()
        let pollsWhileFull = Counter()
        var next = 0
        let source = pollStreamFn { _ -> Poll<Int?> in
            if inFlight.current >= 2 { pollsWhileFull.value += 1 }
            guard next < 10 else { return .ready(nil) }
            next += 1
            return .ready(next)
        }
        try runtime.block(on: source.forEachConcurrent(limit: 2) { _ in inFlight.track((), delay: .milliseconds(1)) })
        #expect(pollsWhileFull.value == 0)
        #expect(inFlight.finished == 10)
    }

    @Test("dropping a pending forEachConcurrent drops the stream and every future in flight")
    func dropDropsEverything() throws {
        let runtime = try Runtime(options: .deterministic(seed: 0))
        let flags = (0..<4).map { _ in DropFlag() }
        let streamFlag = DropFlag()
        var index = 0
        let outcome = try runtime.block(on: timeoutFuture(.milliseconds(5), pollStreamFn { [streamProbe = streamFlag.makeProbe()] _ -> Poll<Int?> in
            streamProbe.touch()
            guard index < flags.count else { return .pending }  // never woken again
            index += 1
            return .ready(index - 1)
        }.forEachConcurrent(limit: nil) { element in
            pendingForever(Void.self, probe: flags[element].makeProbe())
        }))
        #expect(outcome.failure != nil)
        #expect(flags.allSatisfy { $0.isDropped })
        #expect(streamFlag.isDropped)
    }

    @Test("tryForEachConcurrent ends with the first failure, dropping the stream and the futures in flight at once, taking nothing more")
    func tryFirstFailure() throws {
        try Runtime.forEachSeed(UInt64(0)..<10) { runtime, seed in
            let flags = (0..<6).map { _ in DropFlag() }
            let taken = Counter()
            let outcome = try runtime.block(on: iter(0..<100).tryForEachConcurrent(limit: 7) { element in
                taken.value += 1
                if element == 6 {
                    return AnyFuture(sleepFuture(for: .milliseconds(3)).map { Result<Void, Planted>.failure(Planted(6)) })
                }
                if element < 6 {
                    return AnyFuture(pendingForever(Result<Void, Planted>.self, probe: flags[element].makeProbe()))
                }
                return AnyFuture(ready(Result<Void, Planted>.success(())))
            })
            #expect(outcome.failure == Planted(6), "seed \(seed)")
            #expect(flags.allSatisfy { $0.isDropped }, "seed \(seed)")
            #expect(taken.value == 7, "seed \(seed): \(taken.value) elements taken")
        }
    }

    @Test("tryForEachConcurrent succeeds when every future succeeds, with its limit honoured")
    func trySucceeds() throws {
        try Runtime.forEachSeed(UInt64(0)..<5) { runtime, seed in
            var random = TestRandom(seed: seed)
            let inFlight = InFlight()
            let outcome = try runtime.block(on: iter(0..<200).tryForEachConcurrent(limit: 8) { _ in
                inFlight.track(Result<Void, Planted>.success(()), delay: .milliseconds(random.next(below: 5)))
            })
            #expect(outcome.isSuccess, "seed \(seed)")
            #expect(inFlight.most == 8, "seed \(seed)")
            #expect(inFlight.finished == 200, "seed \(seed)")
        }
    }
}
