import Testing
import Weft

extension TimingSensitive.ConcurrencyBridgeTiming {
    /// Many Swift tasks sleeping on one loop's timer wheel.
    @Suite("Concurrent async sleeps on a LoopThread")
    struct ConcurrentSleepsTests {
        @Test("1,000 concurrent 50 ms async sleeps all end no earlier than their deadlines and at most 20 ms late")
        func thousandSleepsAreOnTime() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let sleepers = (0..<1_000).map { _ in
                loop.spawn { () async throws -> Duration in
                    let deadline = ContinuousClock.now + .milliseconds(50)
                    try await Weft.sleep(for: .milliseconds(50))
                    return ContinuousClock.now - deadline
                }
            }
            let lateness = try await awaitWithin(.seconds(20), Task { () async throws -> [Duration] in
                var lateness: [Duration] = []
                for sleeper in sleepers { lateness.append(try await sleeper.value) }
                return lateness
            })
            #expect(lateness.count == 1_000)
            let earliest = lateness.min() ?? .zero
            let latest = lateness.max() ?? .zero
            #expect(earliest >= .zero, "a sleep ended \((Duration.zero - earliest).milliseconds) ms early")
            #expect(latest <= .milliseconds(20), "a sleep ended \(latest.milliseconds) ms late")
        }

        @Test("1,000 async sleeps of staggered lengths each end no earlier than their own deadlines")
        func staggeredSleepsNeverEarly() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let sleepers = (0..<1_000).map { index in
                loop.spawn { () async throws -> Duration in
                    let duration = Duration.microseconds(index * 37 % 30_000)
                    let deadline = ContinuousClock.now + duration
                    try await Weft.sleep(for: duration)
                    return ContinuousClock.now - deadline
                }
            }
            let lateness = try await awaitWithin(.seconds(20), Task { () async throws -> [Duration] in
                var lateness: [Duration] = []
                for sleeper in sleepers { lateness.append(try await sleeper.value) }
                return lateness
            })
            let earliest = lateness.min() ?? .zero
            let latest = lateness.max() ?? .zero
            #expect(earliest >= .zero, "a sleep ended \((Duration.zero - earliest).milliseconds) ms early")
            #expect(latest <= .milliseconds(20), "a sleep ended \(latest.milliseconds) ms late")
        }
    }
}
