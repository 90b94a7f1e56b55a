import Testing
import Weft

/// The deterministic mode's virtual clock (`RuntimeOptions.deterministic(seed:)`).
@Suite("Deterministic mode: the virtual clock")
struct VirtualClockTests {
    @Test("a one-hour sleep completes at once, and the virtual clock then reads exactly one hour")
    func hourLongSleep() throws {
        let runtime = try Runtime(options: .deterministic(seed: 1))
        let (_, elapsed) = try measure { try runtime.block(on: sleep(for: .seconds(3600))) }
        #expect(elapsed < .seconds(1), "real time taken: \(elapsed)")
        #expect(runtime.virtualTimeElapsed == .seconds(3600))
    }

    @Test("timers fire in deadline order, and in the order they were armed within one millisecond")
    func deadlineOrder() throws {
        let runtime = try Runtime(options: .deterministic(seed: 2))
        let fired = Box<[String]>([])
        let delays: [(String, Int)] = [("c", 30), ("a", 10), ("d", 30), ("b", 20), ("e", 5_000)]
        let handles = delays.map { name, milliseconds in
            runtime.spawn(sleep(for: .milliseconds(milliseconds)).map { fired.value.append(name) })
        }
        _ = try runtime.block(on: joinAll(handles))
        #expect(fired.value == ["a", "b", "c", "d", "e"])
        #expect(runtime.virtualTimeElapsed == .milliseconds(5_000))
    }

    @Test("timeout on the virtual clock: the inner future wins when due first, the timeout wins otherwise, each at its exact virtual time")
    func timeoutBothWays() throws {
        let runtime = try Runtime(options: .deterministic(seed: 3))
        let won = try runtime.block(on: timeout(.seconds(10), sleep(for: .seconds(9)).map { "inner" }))
        #expect((try? won.get()) == "inner")
        #expect(runtime.virtualTimeElapsed == .seconds(9))
        let lost = try runtime.block(on: timeout(.seconds(10), sleep(for: .seconds(11)).map { "inner" }))
        #expect((try? lost.get()) == nil, "the inner sleep was due later: \(lost)")
        #expect(runtime.virtualTimeElapsed == .seconds(19))
    }

    @Test("an interval ticks at exact virtual times and skips the ticks a late consumer missed")
    func intervalTicks() throws {
        let runtime = try Runtime(options: .deterministic(seed: 4))
        let start = try #require(runtime.virtualTimeElapsed)
        var ticks = interval(every: .milliseconds(10))
        var napping: Sleep?
        var seen: [String] = []
        let consumer = pollFn { context -> Poll<Void> in
            while true {
                if napping != nil {
                    guard case .ready = napping!.poll(&context) else { return .pending }
                    napping = nil
                }
                guard case .ready(let tick?) = ticks.pollNext(&context) else { return .pending }
                seen.append("\(tick)@\(runtime.virtualTimeElapsed! - start)")
                if seen.count == 4 { return .ready(()) }
                if tick == 1 { napping = sleep(for: .milliseconds(25)) }  // fall behind
            }
        }
        try runtime.block(on: consumer)
        // Tick 2 (due at 20 ms) fires late at 35 ms; tick 3 (30 ms) is skipped.
        #expect(seen == ["0@0.0 seconds", "1@0.01 seconds", "2@0.035 seconds", "4@0.04 seconds"])
    }

    @Test("advanceTime(by:) fires exactly the timers due within the step, and a real-time runtime refuses it")
    func manualAdvance() throws {
        let runtime = try Runtime(options: .deterministic(seed: 5))
        let fired = Box<[Int]>([])
        for milliseconds in [5, 10, 15] {
            runtime.spawn(sleep(for: .milliseconds(milliseconds)).map { fired.value.append(milliseconds) })
        }
        try runtime.block(on: yields(1))  // the sleeps are armed
        try runtime.advanceTime(by: .milliseconds(10))
        try runtime.block(on: yields(1))  // woken tasks run
        #expect(fired.value == [5, 10])
        #expect(runtime.virtualTimeElapsed == .milliseconds(10))
        try runtime.advanceTime(by: .milliseconds(4))
        try runtime.block(on: yields(1))
        #expect(fired.value == [5, 10], "15 ms is not reached at 14 ms")
        try runtime.advanceTime(by: .milliseconds(1))
        try runtime.block(on: yields(1))
        #expect(fired.value == [5, 10, 15])

        let realTime = try Runtime()
        #expect(realTime.virtualTimeElapsed == nil)
        #expect(throws: WeftError.self) { try realTime.advanceTime(by: .seconds(1)) }
    }
}
