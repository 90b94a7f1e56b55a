import Dispatch
import Foundation
import Synchronization
import Testing
import Weft

/// The deterministic mode's virtual clock (`RuntimeOptions.deterministic(seed:)`).
@Suite("Deterministic mode: the virtual clock")
struct VirtualClockTests {
    @Test("a one-hour sleep completes at once, and the virtual clock then reads exactly one hour")
    func hourLongSleep() throws {
        let runtime = try Runtime(options: .deterministic(seed: 1))
        let (_, elapsed) = try measure { try runtime.block(on: sleepFuture(for: .seconds(3600))) }
        #expect(elapsed < .seconds(1), "real time taken: \(elapsed)")
        #expect(runtime.virtualTimeElapsed == .seconds(3600))
    }

    @Test("timers fire in deadline order under every seed; two due in the same millisecond wake together, and their tasks run in the seeded order (the old test's c before d held for its one seed)")
    func deadlineOrder() throws {
        var sameMillisecond = Set<[String]>()
        try Runtime.forEachSeed(UInt64(0)..<20) { runtime, seed in
            let fired = Box<[String]>([])
            let delays: [(String, Int)] = [("c", 30), ("a", 10), ("d", 30), ("b", 20), ("e", 5_000)]
            let handles = delays.map { name, milliseconds in
                runtime.spawn(lazy { sleepFuture(for: .milliseconds(milliseconds)) }.map { fired.value.append(name) })
            }
            _ = try runtime.block(on: joinAll(handles))
            #expect(Array(fired.value.prefix(2)) == ["a", "b"] && fired.value.last == "e", "seed \(seed): \(fired.value)")
            #expect(Set(fired.value[2..<4]) == ["c", "d"], "seed \(seed): \(fired.value)")
            #expect(runtime.virtualTimeElapsed == .milliseconds(5_000))
            sameMillisecond.insert(Array(fired.value[2..<4]))
        }
        #expect(sameMillisecond.count == 2, "the seeds ran c and d in one order only: \(sameMillisecond)")
    }

    @Test("timeout on the virtual clock: the inner future wins when due first, the timeout wins otherwise, each at its exact virtual time")
    func timeoutBothWays() throws {
        let runtime = try Runtime(options: .deterministic(seed: 3))
        let won = try runtime.block(on: timeoutFuture(.seconds(10), sleepFuture(for: .seconds(9)).map { "inner" }))
        #expect((try? won.get()) == "inner")
        #expect(runtime.virtualTimeElapsed == .seconds(9))
        let lost = try runtime.block(on: timeoutFuture(.seconds(10), sleepFuture(for: .seconds(11)).map { "inner" }))
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
                if tick == 1 { napping = sleepFuture(for: .milliseconds(25)) }  // fall behind
            }
        }
        try runtime.block(on: consumer)
        // Tick 2 (due at 20 ms) fires late at 35 ms; tick 3 (30 ms) is skipped.
        #expect(seen == ["0@0.0 seconds", "1@0.01 seconds", "2@0.035 seconds", "4@0.04 seconds"])
    }

    @Test("a timer beyond the wheel's two years hides no other: a 13-day sleep, and a 1 s sleep across a 2^30 ms boundary of the wheel's clock, fire on time beside one (they were put off by about two years)")
    func farTimerHidesNoOther() throws {
        let runtime = try Runtime(options: .deterministic(seed: 6))
        let forever = runtime.spawn(sleepFuture(for: .seconds(Int64.max / 2)))
        try runtime.block(on: yields(1))  // armed
        try runtime.block(on: sleepFuture(for: .seconds(13 * 86_400)))
        #expect(runtime.virtualTimeElapsed == .seconds(13 * 86_400))
        // Just short of the next 2^30 ms boundary, then a second across it.
        let boundary = Duration.milliseconds(2 << 30)
        let elapsed = try #require(runtime.virtualTimeElapsed)
        try runtime.advanceTime(by: boundary - elapsed - .milliseconds(1_000_000) - .milliseconds(500))
        let before = try #require(runtime.virtualTimeElapsed)
        try runtime.block(on: sleepFuture(for: .seconds(1)))
        #expect(runtime.virtualTimeElapsed == before + .seconds(1))
        forever.abort()
    }

    @Test("two deterministic runtimes on one thread, and a real-time one beside them: a time future made in each one's block(on:) reads that runtime's own clock (an older runtime's sleep read the newer one's clock, and ended at once an hour ahead)")
    func timeFuturesReadTheirRuntimesClock() throws {
        let older = try Runtime(options: .deterministic(seed: 1))
        let newer = try Runtime(options: .deterministic(seed: 2))
        try older.advanceTime(by: .seconds(3600))
        try older.block(on: lazy { sleepFuture(for: .seconds(10)) })
        #expect(older.virtualTimeElapsed == .seconds(3610))
        try newer.block(on: lazy { sleepFuture(for: .seconds(5)) })
        #expect(newer.virtualTimeElapsed == .seconds(5))
        #expect(older.virtualTimeElapsed == .seconds(3610))

        let realTime = try Runtime()
        let (_, took) = try measure { try realTime.guardedBlock(on: lazy { sleepFuture(for: .milliseconds(50)) }) }
        #expect(took >= .milliseconds(50) && took < .seconds(10), "\(took)")
    }

    @Test("advanceTime fires the timers due on the way in deadline order, also two in one higher-level slot of the wheel armed in the other order (a 100 ms sleep fired before a 90 ms one armed after it)")
    func advanceFiresInDeadlineOrder() throws {
        final class Order: @unchecked Sendable { var fired: [Int] = [] }
        let runtime = try Runtime(options: .deterministic(seed: 3))
        let order = Order()
        var all = joinAll([100, 90, 5].map { ms in lazy { sleepFuture(for: .milliseconds(ms)) }.map { _ in order.fired.append(ms) } })
        try runtime.block(on: pollFn { context in
            _ = all.poll(&context)  // all three armed
            return .ready(())
        })
        try runtime.advanceTime(by: .seconds(1))
        _ = try runtime.block(on: pollFn { all.poll(&$0) })
        #expect(order.fired == [5, 90, 100])
    }

    @Test("deterministic runtimes that end out of order, or on another thread, leave their thread real time: a later runtime's 50 ms sleep takes 50 ms (the thread's clock pointed at a freed clock)")
    func runtimesEndingOutOfOrder() throws {
        var older: Runtime? = try Runtime(options: .deterministic(seed: 7))
        var newer: Runtime? = try Runtime(options: .deterministic(seed: 8))
        try older!.block(on: sleepFuture(for: .seconds(5)))  // reads the newer clock while both live
        older = nil
        try newer!.block(on: sleepFuture(for: .seconds(1)))
        newer = nil
        let realTime = try Runtime()
        let (_, took) = try measure { try realTime.guardedBlock(on: sleepFuture(for: .milliseconds(50))) }
        #expect(took >= .milliseconds(50) && took < .seconds(10), "\(took)")
        let fresh = try Runtime(options: .deterministic(seed: 9))
        try fresh.block(on: sleepFuture(for: .seconds(2)))
        #expect(fresh.virtualTimeElapsed == .seconds(2))

        // Made on a thread of its own, ended on this one; then that thread sleeps in real time.
        nonisolated(unsafe) var handedOver: Runtime?
        nonisolated(unsafe) var threadTook: Duration?
        let made = DispatchSemaphore(value: 0), ended = DispatchSemaphore(value: 0)
        let thread = ForeignThread {
            handedOver = try? Runtime(options: .deterministic(seed: 10))
            made.signal()
            ended.wait()
            if let runtime = try? Runtime() {
                threadTook = try? measure { try runtime.guardedBlock(on: sleepFuture(for: .milliseconds(50))) }.1
            }
        }
        made.wait()
        #expect(handedOver != nil)
        handedOver = nil
        ended.signal()
        thread.join()
        let onThread = try #require(threadTook)
        #expect(onThread >= .milliseconds(50) && onThread < .seconds(10), "\(onThread)")
    }

    @Test("advanceTime(by:) fires exactly the timers due within the step, and a real-time runtime refuses it")
    func manualAdvance() throws {
        let runtime = try Runtime(options: .deterministic(seed: 5))
        let fired = Box<[Int]>([])
        for milliseconds in [5, 10, 15] {
            runtime.spawn(sleepFuture(for: .milliseconds(milliseconds)).map { fired.value.append(milliseconds) })
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

    @Test("advanceTime(by:) from another thread is refused with wrongThread and moves nothing (it fired the loop's timers there, racing the loop thread)")
    func advanceTimeOffThread() throws {
        let runtime = try Runtime(options: .deterministic(seed: 5))
        let fired = Box<[Int]>([])
        runtime.spawn(sleepFuture(for: .milliseconds(5)).map { fired.value.append(5) })
        try runtime.block(on: yields(1))  // armed
        let shared = SharedBox<Runtime?>(runtime)
        let refusal = SharedBox<WeftError?>(nil)
        ForeignThread {
            do throws(WeftError) { try shared.get()!.advanceTime(by: .seconds(1)) } catch { refusal.set(error) }
        }.join()
        shared.set(nil)
        #expect(refusal.get()?.kind == .wrongThread)
        #expect(refusal.get()?.operation == "advanceTime(by:)")
        #expect(runtime.virtualTimeElapsed == .zero)
        try runtime.block(on: yields(1))
        #expect(fired.value == [], "the sleep fired though no time passed on the runtime's thread")
        try runtime.advanceTime(by: .milliseconds(5))
        try runtime.block(on: yields(1))
        #expect(fired.value == [5])
    }

    @Test("advancing by the largest duration, twice, leaves endless sleeps pending and the elapsed time readable (it fired them, then overflowed)")
    func advanceToTheEnd() throws {
        let runtime = try Runtime(options: .deterministic(seed: 5))
        try runtime.block(on: sleepFuture(for: .seconds(1)))
        let endless = runtime.spawn(sleepFuture(for: .seconds(Int64.max)))
        try runtime.block(on: yields(1))  // armed
        try runtime.advanceTime(by: .seconds(Int64.max))
        try runtime.advanceTime(by: .seconds(Int64.max))
        try runtime.block(on: yields(1))
        #expect(!endless.isFinished, "a sleep of Int64.max seconds ended")
        let elapsed = try #require(runtime.virtualTimeElapsed)
        #expect(elapsed > .seconds(Int64(200 * 365 * 86_400)))
        let later = runtime.spawn(sleepFuture(for: .seconds(Int64.max)))
        try runtime.block(on: yields(2))
        #expect(!later.isFinished, "a sleep of Int64.max seconds made at the clock's end ended")
        #expect(runtime.pendingTimerCount == 2)
    }

    @Test("with only an endless sleep armed, block(on:) still takes a wake from another thread (it jumped to that sleep's deadline, which the clock never reaches, for ever), the clock stays where it was (it went from one cascade of the sleep's wheel slot to the next, to its last nanosecond), and a later sleep ends")
    func endlessSleepLetsForeignWakesIn() {
        let outcome = Mutex<Result<Int, WeftError>?>(nil)
        let elapsed = Mutex<(afterWake: Duration?, afterSleep: Duration?)>((nil, nil))
        let timers = Mutex<[Int]>([])  // pending before and after the endless sleep's abort
        let ended = returnsOnAThreadOfItsOwn(within: .seconds(10)) {
            do throws(WeftError) {
                let runtime = try Runtime(options: .deterministic(seed: 6))
                let endless = runtime.spawn(sleepFuture(for: .seconds(Int64.max)))
                let (sender, receiver) = oneshotChannel(of: Int.self)
                let foreign = ForeignThread {
                    Thread.sleep(forTimeInterval: 0.05)
                    try? sender.send(7)
                }
                defer { foreign.join() }
                let value = try runtime.block(on: receiver)
                elapsed.locked { $0.afterWake = runtime.virtualTimeElapsed }
                try runtime.block(on: sleepFuture(for: .seconds(1)))
                elapsed.locked { $0.afterSleep = runtime.virtualTimeElapsed }
                timers.locked { $0.append(runtime.pendingTimerCount) }
                endless.abort()
                try runtime.block(on: yields(1))
                timers.locked { $0.append(runtime.pendingTimerCount) }
                outcome.locked { $0 = .success((try? value.get()) ?? -1) }
            } catch {
                outcome.locked { $0 = .failure(error) }
            }
        }
        #expect(ended, "block(on:) never took the other thread's wake, or the later sleep never ended")
        #expect(outcome.locked { $0 } == .success(7))
        #expect(elapsed.locked { $0.afterWake } == .zero)
        #expect(elapsed.locked { $0.afterSleep } == .seconds(1))
        #expect(timers.locked { $0 } == [1, 0], "the endless sleep counts as armed until it is dropped")
    }
}

/// `Interval`'s missed-tick behaviours, `reset()` and start instant, on the
/// virtual clock: each tick's index and exact time.
@Suite("Deterministic mode: interval schedules")
struct IntervalScheduleTests {
    /// On a fresh deterministic runtime (whose virtual clock the interval must
    /// be made under), takes `count` ticks of the interval `make` builds,
    /// calling `afterTick` after each (which may return a nap to fall behind
    /// by); returns "index@time" for each.
    static func ticks(
        seed: UInt64, count: Int, _ make: () -> Interval,
        afterTick: @escaping (Int, inout Interval) -> Duration? = { _, _ in nil },
        afterNap: @escaping (inout Interval) -> Void = { _ in }
    ) throws -> [String] {
        let runtime = try Runtime(options: .deterministic(seed: seed))
        let start = try #require(runtime.virtualTimeElapsed)
        var ticks = make()
        var napping: Sleep?
        var seen: [String] = []
        try runtime.block(on: pollFn { context -> Poll<Void> in
            while true {
                if napping != nil {
                    guard case .ready = napping!.poll(&context) else { return .pending }
                    napping = nil
                    afterNap(&ticks)
                }
                guard case .ready(let tick?) = ticks.pollNext(&context) else { return .pending }
                seen.append("\(tick)@\(runtime.virtualTimeElapsed! - start)")
                if seen.count == count { return .ready(()) }
                if let nap = afterTick(tick, &ticks) { napping = sleepFuture(for: nap) }
            }
        })
        return seen
    }

    static func fallBehind(_ tick: Int, _: inout Interval) -> Duration? {
        tick == 1 ? .milliseconds(25) : nil
    }

    static func every10ms(_ behavior: MissedTickBehavior) -> Interval {
        var ticks = interval(every: .milliseconds(10))
        ticks.missedTickBehavior = behavior
        return ticks
    }

    @Test("skip, the default, fires the overdue tick once and skips to the schedule's next future tick")
    func skip() throws {
        #expect(interval(every: .seconds(1)).missedTickBehavior == .skip)
        #expect(try Self.ticks(seed: 10, count: 4, { Self.every10ms(.skip) }, afterTick: Self.fallBehind)
                == ["0@0.0 seconds", "1@0.01 seconds", "2@0.035 seconds", "4@0.04 seconds"])
    }

    @Test("burst fires every missed tick back to back")
    func burst() throws {
        #expect(try Self.ticks(seed: 11, count: 5, { Self.every10ms(.burst) }, afterTick: Self.fallBehind)
                == ["0@0.0 seconds", "1@0.01 seconds", "2@0.035 seconds", "3@0.035 seconds", "4@0.04 seconds"])
    }

    @Test("delay moves the schedule: the next tick is a period after a late one, one taken more than 5 ms after it was due, as Tokio counts it (it moved only after a tick late by more than a period)")
    func delay() throws {
        #expect(try Self.ticks(seed: 12, count: 4, { Self.every10ms(.delay) }, afterTick: Self.fallBehind)
                == ["0@0.0 seconds", "1@0.01 seconds", "2@0.035 seconds", "3@0.045 seconds"])
        // Late by less than a period (tick 2, due at 20 ms, taken at 27): the
        // schedule moves all the same (tick 3 came 3 ms after tick 2)...
        let lateBy7: (Int, inout Interval) -> Duration? = { tick, _ in tick == 1 ? .milliseconds(17) : nil }
        #expect(try Self.ticks(seed: 12, count: 4, { Self.every10ms(.delay) }, afterTick: lateBy7)
                == ["0@0.0 seconds", "1@0.01 seconds", "2@0.027 seconds", "3@0.037 seconds"])
        // ...but not for 5 ms or less, a timer's own lateness.
        let lateBy5: (Int, inout Interval) -> Duration? = { tick, _ in tick == 1 ? .milliseconds(15) : nil }
        #expect(try Self.ticks(seed: 12, count: 4, { Self.every10ms(.delay) }, afterTick: lateBy5)
                == ["0@0.0 seconds", "1@0.01 seconds", "2@0.025 seconds", "3@0.03 seconds"])
    }

    @Test("a 2 ms interval whose tick is taken 2 ms late keeps its schedule, with delay and with skip, as Tokio's: 5 ms or less is a timer's own lateness (delay moved the schedule, skip skipped a tick: a short period lost ticks on an idle loop)", arguments: [MissedTickBehavior.delay, .skip])
    func shortPeriodLateByLessThan5ms(behavior: MissedTickBehavior) throws {
        let make = { () -> Interval in
            var ticks = interval(every: .milliseconds(2))
            ticks.missedTickBehavior = behavior
            return ticks
        }
        let lateBy2: (Int, inout Interval) -> Duration? = { tick, _ in tick == 0 ? .milliseconds(4) : nil }
        #expect(try Self.ticks(seed: 18, count: 4, make, afterTick: lateBy2)
                == ["0@0.0 seconds", "1@0.004 seconds", "2@0.004 seconds", "3@0.006 seconds"])
    }

    @Test("reset() makes the next tick due one period from the reset")
    func reset() throws {
        // After tick 1 (10 ms) the consumer naps 5 ms and resets at 15 ms:
        // tick 2 comes at 25 ms instead of 20, and the schedule goes on from there.
        let napAfterTick1: (Int, inout Interval) -> Duration? = { tick, _ in tick == 1 ? .milliseconds(5) : nil }
        #expect(try Self.ticks(seed: 13, count: 4, { interval(every: .milliseconds(10)) },
                               afterTick: napAfterTick1, afterNap: { $0.reset() })
                == ["0@0.0 seconds", "1@0.01 seconds", "2@0.025 seconds", "3@0.035 seconds"])
        #expect(try Self.ticks(seed: 14, count: 4, { interval(every: .milliseconds(10)) }, afterTick: napAfterTick1)
                == ["0@0.0 seconds", "1@0.01 seconds", "2@0.02 seconds", "3@0.03 seconds"], "without the reset")
    }

    @Test("reset() after a poll that returned pending: the waiting task is woken by the new tick (the old timer went with its waker)")
    func resetWhileWaiting() throws {
        let runtime = try Runtime(options: .deterministic(seed: 17))
        var ticks = interval(every: .milliseconds(10))
        var didReset = false
        let start = ContinuousClock.now
        let tick = try runtime.block(on: pollFn { (context: inout Context) -> Poll<Int> in
            while true {
                guard case .ready(let tick?) = ticks.pollNext(&context) else {
                    // Waiting for tick 1 (due at 10 ms): reset it to 10 ms from now.
                    if !didReset { didReset = true; ticks.reset() }
                    return .pending
                }
                if tick >= 1 { return .ready(tick) }
            }
        })
        #expect(tick == 1)
        #expect(runtime.virtualTimeElapsed.map { $0 >= .milliseconds(10) } == true)
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test("interval(every:startingAt:) ticks first at the start instant; a start in the past ticks at once")
    func startingAt() throws {
        // The start is an instant of the real clock, carried onto the virtual
        // one by reading the real clock again: a thread kept off the CPU
        // between the two reads brings tick 0 a millisecond or more sooner
        // (up to 10 ms here), never later, and tick 1 a period after it.
        let ticks = try Self.ticks(seed: 15, count: 2, { interval(every: .milliseconds(10), startingAt: .now + .milliseconds(30)) })
        let times = ticks.map { tick in tick.split(separator: "@").last.flatMap { Double($0.dropLast(" seconds".count)) } ?? -1 }
        #expect(ticks.map { $0.prefix(2) } == ["0@", "1@"], "\(ticks)")
        #expect(times.count == 2 && times[0] > 0.02 && times[0] <= 0.03, "\(ticks)")
        #expect(times.count == 2 && abs(times[1] - times[0] - 0.01) < 0.0001, "\(ticks)")
        #expect(try Self.ticks(seed: 16, count: 2, { interval(every: .milliseconds(10), startingAt: .now - .seconds(5)) })
                == ["0@0.0 seconds", "1@0.01 seconds"])
    }
}
