import CWeftSupport
import Testing
import Weft

/// Deterministic runtimes made and dropped on a thread that drives a loop.
@Suite("Deterministic mode: clocks of runtimes made on a loop's thread")
struct NestedClockTests {
    // Before the fix that came with this test, each runtime left its clock's
    // node on the thread's chain (32 bytes) for the thread's life: a dropped
    // clock left the chain only at a read of the clock made while no loop was
    // driven, and a LoopThread's thread drives its loop for its whole life.
    @Test("100 deterministic runtimes made and dropped on a LoopThread's thread leave no clock behind on its chain, and the loop still runs in real time")
    func runtimesMadeOnALoopThreadLeaveNoClock() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let (before, after, virtualElapsed) = try await loop.run { () async throws -> (Int, Int, Duration) in
            let before = weft_virtual_clock_chain_length()
            var elapsed = Duration.zero
            for seed in 0..<100 {
                let runtime = try Runtime(options: .deterministic(seed: UInt64(seed)))
                // Made inside the drive, so its deadline is on the runtime's
                // clock (made outside, it read the loop's real time).
                try runtime.block(on: lazy { sleepFuture(for: .seconds(5)) })
                elapsed += runtime.virtualTimeElapsed ?? .zero
            }
            return (before, weft_virtual_clock_chain_length(), elapsed)
        }
        #expect(virtualElapsed == .seconds(500))
        #expect(after == before, "\(after - before) clocks left on the loop thread's chain")
        let start = ContinuousClock.now
        try await loop.run { try await Weft.sleep(for: .milliseconds(20)) }
        #expect(ContinuousClock.now - start >= .milliseconds(20), "the loop's sleeps ran on a virtual clock")
    }
}
