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
            let lateness = try await onTimeInOneOf({
                try await Self.lateness(on: loop) { _ in .milliseconds(50) }
            }, isOnTime: Self.atMost20msLate)
            #expect(lateness.count == 1_000)
            Self.expectNoneMoreThan20msLate(lateness)
        }

        @Test("1,000 async sleeps of staggered lengths each end no earlier than their own deadlines")
        func staggeredSleepsNeverEarly() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let lateness = try await onTimeInOneOf({
                try await Self.lateness(on: loop) { index in .microseconds(index * 37 % 30_000) }
            }, isOnTime: Self.atMost20msLate)
            #expect(lateness.count == 1_000)
            Self.expectNoneMoreThan20msLate(lateness)
        }

        /// How late each of 1,000 sleeps on `loop`, the `index`th for
        /// `duration(index)`, ended after its deadline; one that ended early
        /// fails the test, whichever attempt it is.
        private static func lateness(on loop: LoopThread, _ duration: @escaping @Sendable (Int) -> Duration) async throws -> [Duration] {
            let sleepers = (0..<1_000).map { index in
                loop.spawn { () async throws -> Duration in
                    let deadline = ContinuousClock.now + duration(index)
                    try await Weft.sleep(for: duration(index))
                    return ContinuousClock.now - deadline
                }
            }
            let lateness = try await awaitWithin(.seconds(20), Task { () async throws -> [Duration] in
                var lateness: [Duration] = []
                for sleeper in sleepers { lateness.append(try await sleeper.value) }
                return lateness
            })
            expectNoneEarly(lateness)
            return lateness
        }

        private static func atMost20msLate(_ lateness: [Duration]) -> Bool {
            (lateness.max() ?? .zero) <= .milliseconds(20)
        }

        private static func expectNoneEarly(_ lateness: [Duration]) {
            let earliest = lateness.min() ?? .zero
            #expect(earliest >= .zero, "a sleep ended \((Duration.zero - earliest).milliseconds) ms early")
        }

        private static func expectNoneMoreThan20msLate(_ lateness: [Duration]) {
            let latest = lateness.max() ?? .zero
            #expect(latest <= .milliseconds(20), "a sleep ended \(latest.milliseconds) ms late, in each of 3 attempts")
        }
    }
}
