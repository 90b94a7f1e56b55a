import Glibc
import Testing
import Weft

@Suite("WeftClock: Weft's time as a Swift Clock")
struct WeftClockTests {
    @Test("on a deterministic runtime, Task.sleep(for: 1 h, clock: WeftClock()) returns at once in real time, with the clock an hour later")
    func virtualHour() throws {
        let runtime = try Runtime(options: .deterministic(seed: 3))
        let start = ContinuousClock.now
        let elapsed = try runtime.block(on: AsyncFuture { () async -> Duration? in
            let clock = WeftClock()
            let before = clock.now
            do {
                try await Task.sleep(for: .seconds(3600), clock: clock)
            } catch {
                return nil
            }
            return before.duration(to: clock.now)
        })
        let slept = try #require(elapsed, "the sleep threw")
        #expect(slept >= .seconds(3600))
        #expect(slept < .seconds(3601))
        #expect(ContinuousClock.now - start < .seconds(60), "the hour passed in real time")  // well under an hour, even under a sanitizer
    }

    @Test("off a deterministic runtime it measures real time, and a cancelled sleep throws CancellationError")
    func realTime() async throws {
        let clock = WeftClock()
        let before = clock.now
        let realBefore = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(30), clock: clock)
        #expect(before.duration(to: clock.now) >= .milliseconds(29))
        #expect(ContinuousClock.now - realBefore >= .milliseconds(29))

        let sleeper = Task { try await Task.sleep(for: .seconds(60), clock: WeftClock()) }
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
    }

    @Test("instants saturate at the ends of the time line: .seconds(Int64.max) from now is later, not a second ago, and a sleep that long waits until cancelled")
    func saturates() async throws {
        let now = WeftClock().now
        #expect(now.advanced(by: .seconds(Int64.max)) > now)
        #expect(now.advanced(by: .seconds(10_000_000_000)) > now)
        #expect(now.advanced(by: .seconds(Int64.min)) < now)
        #expect(now.duration(to: now.advanced(by: .seconds(Int64.max))) > .seconds(100 * 365 * 86_400))
        // Saturated at the far past, less than a second more is still the far
        // past (the sign was taken from the whole seconds alone: 0, so the far future).
        let farPast = now.advanced(by: .seconds(Int64.min))
        #expect(farPast.advanced(by: .nanoseconds(-1)) == farPast)
        #expect(farPast.advanced(by: .milliseconds(-500)) == farPast)
        let sleeper = Task { try await Task.sleep(for: .seconds(Int64.max), clock: WeftClock()) }
        try await Task.sleep(for: .milliseconds(200))
        sleeper.cancel()
        // Wrapped, the deadline was in the past and the sleep returned at once.
        await #expect(throws: CancellationError.self) { try await sleeper.value }
    }

    // Before the fix that came with this test, each future was made on the
    // calling thread, on the virtual clock of the deterministic runtime alive
    // there (an hour in), and armed on the shared loop, on real time: the
    // sleeps ended at once and the timeout threw TimedOut at its first poll.
    // Exit tests: the runtime lives on one of the pool's threads across an
    // await, where other tests' tasks would have read its clock too.
    @Test("awaited off any loop on a thread where a deterministic runtime lives, sleep(for:), sleep(until:), timeout and Task.sleep on a WeftClock take their time in real time")
    func realTimeBesideADeterministicRuntime() async {
        await #expect(processExitsWith: .success) { await WeftClockTests.sleepBesideADeterministicRuntime(0) }
        await #expect(processExitsWith: .success) { await WeftClockTests.sleepBesideADeterministicRuntime(1) }
        await #expect(processExitsWith: .success) { await WeftClockTests.sleepBesideADeterministicRuntime(2) }
        await #expect(processExitsWith: .success) { await WeftClockTests.sleepBesideADeterministicRuntime(3) }
    }

    /// Exits the process with 0 when the `operation`th way of waiting 200 ms,
    /// awaited where a deterministic runtime an hour into its virtual time
    /// lives, takes its 200 ms in real time; else with 1 (too short or too
    /// long), 2 (the runtime failed) or 3 (the wait threw). Exits rather than
    /// returns: the runtime must not be dropped on another thread, where the
    /// await may have resumed.
    static func sleepBesideADeterministicRuntime(_ operation: Int) async -> Never {
        let runtime: Runtime
        do {
            runtime = try Runtime(options: .deterministic(seed: 1))
            try runtime.block(on: sleepFuture(for: .seconds(3600)))
        } catch {
            exit(2)
        }
        let start = ContinuousClock.now
        do {
            switch operation {
            case 0: try await Weft.sleep(for: .milliseconds(200))
            case 1: try await Weft.sleep(until: .now + .milliseconds(200))
            case 2: try await timeout(.seconds(5)) { try await Task.sleep(for: .milliseconds(200)) }
            default: try await Task.sleep(for: .milliseconds(200), clock: WeftClock())
            }
        } catch {
            exit(3)
        }
        let elapsed = ContinuousClock.now - start
        withExtendedLifetime(runtime) {}
        exit(elapsed >= .milliseconds(190) && elapsed < .seconds(30) ? 0 : 1)
    }

    @Test("instants order and measure as durations")
    func instants() {
        let clock = WeftClock()
        let now = clock.now
        let later = now.advanced(by: .milliseconds(1500))
        #expect(now < later)
        #expect(now.duration(to: later) == .milliseconds(1500))
        #expect(later.duration(to: now) == .milliseconds(-1500))
        #expect(later.advanced(by: .milliseconds(-1500)) == now)
    }
}
