import Testing
import Weft

@Suite("Future adapters: lazy, fuse, inspect, mapError, flatMap, pollOnce, nowOrNever")
struct FutureAdapterTests {
    @Test("lazy runs its closure at the first poll, not when created")
    func lazyIsLazy() throws {
        let calls = Counter()
        var future = lazy { () -> Ready<Int> in
            calls.value += 1
            return ready(7)
        }
        #expect(calls.value == 0)
        #expect(future.pollOnce() == .ready(7))
        #expect(calls.value == 1)
    }

    @Test("a fused future never polls a finished future again, returns pending without waking, and says it terminated")
    func fuseNeverRepolls() {
        let polls = Counter()
        let wakes = AtomicCounter()
        let waker = Waker { wakes.increment() }
        var fused = counted("done", after: 1, polls: polls).fuse()
        #expect(!fused.isTerminated)
        #expect(pollOnce(&fused, waker: waker) == .pending)
        #expect(pollOnce(&fused, waker: waker) == .ready("done"))
        #expect(fused.isTerminated)
        let wakesAtEnd = wakes.value
        for _ in 0..<5 { #expect(pollOnce(&fused, waker: waker) == .pending) }
        #expect(polls.value == 2)
        #expect(wakes.value == wakesAtEnd, "a finished fuse arranged a wake")
    }

    @Test("a loop of select over fused branches polls the finished branch never again and ends when both are done")
    func selectLoopOverFusedBranches() throws {
        try Runtime.forEachSeed(UInt64(0)..<10) { runtime, seed in
            let fastPolls = Counter()
            let slowPolls = Counter()
            var fast = counted("fast", after: 1, polls: fastPolls).fuse()
            var slow = sleepFuture(for: .milliseconds(20)).map { "slow" }.fuse()
            var order: [String] = []
            try runtime.block(on: pollFn { context -> Poll<Void> in
                // The async book's `loop { select! { ... complete => break } }`.
                while !(fast.isTerminated && slow.isTerminated) {
                    if case .ready(let value) = fast.poll(&context) { order.append(value); continue }
                    slowPolls.value += 1
                    if case .ready(let value) = slow.poll(&context) { order.append(value); continue }
                    return .pending
                }
                return .ready(())
            })
            #expect(order == ["fast", "slow"], "seed \(seed)")
            #expect(fastPolls.value == 2, "seed \(seed): the finished branch was polled again")
            #expect(slowPolls.value <= 4, "seed \(seed): \(slowPolls.value) polls of the sleep; a busy loop?")
        }
    }

    @Test("inspect sees the output once, and hands it on")
    func inspectSeesOutput() throws {
        let runtime = try Runtime()
        let seen = Box<[Int]>([])
        let value = try runtime.block(on: yields(2).map { 42 }.inspect { seen.value.append($0) })
        #expect(value == 42)
        #expect(seen.value == [42])
    }

    @Test("mapError changes a failure and lets a success through")
    func mapError() throws {
        let runtime = try Runtime()
        struct Wrapped: Error, Equatable { let inner: Planted }
        let failed = try runtime.block(on: ready(Result<Int, Planted>.failure(Planted(1))).mapError { Wrapped(inner: $0) })
        #expect(failed.failure == Wrapped(inner: Planted(1)))
        let passed = try runtime.block(on: ready(Result<Int, Planted>.success(3)).mapError { Wrapped(inner: $0) })
        #expect(try passed.get() == 3)
    }

    @Test("flatMap runs the next future only after a success; a failure of either is the output")
    func flatMapChains() throws {
        let runtime = try Runtime()
        let built = Counter()
        let chained = try runtime.block(on: yields(1).map { Result<Int, Planted>.success(2) }.flatMap { value in
            built.value += 1
            return yields(1).map { Result<String, Planted>.success("\(value * 2)") }
        })
        #expect(try chained.get() == "4")
        let first = try runtime.block(on: ready(Result<Int, Planted>.failure(Planted(1))).flatMap { value in
            built.value += 1
            return ready(Result<Int, Planted>.success(value))
        })
        #expect(first.failure == Planted(1))
        #expect(built.value == 1, "the next future was built after a failure")
        let second = try runtime.block(on: ready(Result<Int, Planted>.success(1)).flatMap { _ in
            ready(Result<Int, Planted>.failure(Planted(2)))
        })
        #expect(second.failure == Planted(2))
    }

    @Test("pollOnce polls in place: a pending future keeps its progress and can finish later in a task")
    func pollOnceInPlace() throws {
        let polls = Counter()
        var future = counted(5, after: 2, polls: polls)
        #expect(future.pollOnce() == .pending)
        #expect(future.pollOnce() == .pending)
        #expect(future.pollOnce() == .ready(5))
        #expect(polls.value == 3)
        // Completed by hand, not a timer: a 5 ms sleep made before the
        // runtime was already due on a loaded machine, so its first poll was ready.
        let mailbox = Mailbox<Int>()
        var later = mailbox.receive().map { $0 + 1 }
        let runtime = try Runtime(options: .deterministic(seed: 0))
        #expect(try runtime.block(on: pollFn { _ in .ready(later.pollOnce()) }) == .pending)
        mailbox.send(1)
        #expect(try runtime.block(on: later) == 2)
        #expect(mailbox.polls == 2)
    }

    @Test("nowOrNever is the output of a future ready at once, and nil (the future dropped) otherwise")
    func nowOrNever() {
        #expect(ready(3).nowOrNever() == 3)
        let flag = DropFlag()
        #expect(pendingForever(Int.self, probe: flag.makeProbe()).nowOrNever() == nil)
        #expect(flag.isDropped)
    }
}
