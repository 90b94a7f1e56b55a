import Testing
import Weft

/// A hand-written future, as in `Future`'s documentation.
private struct Countdown: Future {
    var remaining: Int
    mutating func poll(_ context: inout Context) -> Poll<String> {
        if remaining == 0 { return .ready("liftoff") }
        remaining -= 1
        context.waker.wake()
        return .pending
    }
}

@Suite("Poll, Future and the basic futures")
struct FutureBasicsTests {
    @Test("Poll.map transforms a ready value and keeps pending")
    func pollMap() {
        let ready: Poll<Int> = .ready(2)
        let pending: Poll<Int> = .pending
        #expect(ready.map { $0 * 3 } == .ready(6))
        #expect(pending.map { $0 * 3 } == .pending)
        #expect(ready.isReady)
        #expect(!pending.isReady)
    }

    @Test("a hand-written future runs by hand and on the runtime")
    func handWrittenFuture() throws {
        let wakes = AtomicCounter()
        var countdown = Countdown(remaining: 3)
        var results: [Poll<String>] = []
        for _ in 0..<4 { results.append(pollOnce(&countdown, waker: Waker { wakes.increment() })) }
        #expect(results == [.pending, .pending, .pending, .ready("liftoff")])
        #expect(wakes.value == 3)

        let runtime = try Runtime()
        #expect(try runtime.block(on: Countdown(remaining: 10)) == "liftoff")
        #expect(runtime.statistics.polls == 11)
    }

    @Test("ready(x) is ready at the first poll; pending() never is")
    func readyAndPending() {
        var now = ready("x")
        #expect(pollOnce(&now) == .ready("x"))
        var never = pending(Int.self)
        for _ in 0..<3 { #expect(pollOnce(&never) == .pending) }
    }

    @Test("pollFn calls its closure on every poll with the task's context")
    func pollFnCallsClosure() throws {
        let runtime = try Runtime()
        let polls = Counter()
        let value = try runtime.block(on: pollFn { (context: inout Context) -> Poll<Int> in
            polls.value += 1
            if polls.value < 3 {
                context.waker.wake()
                return .pending
            }
            return .ready(polls.value)
        })
        #expect(value == 3)
    }

    @Test("boxed futures of different types can share an array and keep working")
    func boxedFutures() throws {
        let runtime = try Runtime()
        let futures: [AnyFuture<Int>] = [
            ready(1).boxed(),
            yields(2).map { 2 }.boxed(),
            sleepFuture(for: .milliseconds(1)).map { 3 }.boxed(),
            Countdown(remaining: 1).map { $0.count }.boxed(),
        ]
        #expect(try runtime.guardedBlock(on: joinAll(futures)) == [1, 2, 3, 7])
    }

    @Test("dropping a boxed future drops what it wraps")
    func droppingBoxedFuture() {
        let flag = DropFlag()
        do {
            let probe = flag.makeProbe()
            var future = pollFn { (_: inout Context) -> Poll<Int> in
                probe.touch()
                return .pending
            }.boxed()
            #expect(pollOnce(&future) == .pending)
            #expect(!flag.isDropped)
        }
        #expect(flag.isDropped)
    }

    @Test("JoinError and WeftError describe themselves")
    func errorDescriptions() {
        #expect("\(JoinError(.aborted))".contains("aborted"))
        #expect("\(JoinError(.runtimeShutDown))".contains("shut down"))
        let stuck = WeftError(.stuck, operation: "block(on:)")
        #expect("\(stuck)".hasPrefix("block(on:)"))
        #expect(stuck.name == nil)
        let refused = WeftError(.libuv(code: -111), operation: "connect")
        #expect(refused.name == "ECONNREFUSED")
        #expect(refused.message == "connection refused")
        #expect("\(refused)" == "connect: ECONNREFUSED (connection refused)")
    }
}
