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
