import Glibc
import Testing
import Weft

/// Issue 6 ("Reliability"): a client that resets its connection (RST, as a
/// crashed or killed peer does) in the middle of a request costs the server
/// that connection and nothing else.
extension TimingSensitive {
    @Suite("Clients that reset mid-request cost the server nothing but their connection")
    struct ClientsThatResetMidRequestTests {
        static let threads = 4
        static let clientsPerThread = 50
        /// What each client sends before its reset, in turn: nothing (the reset
        /// may arrive before the server has accepted), a few bytes, and enough
        /// that the server is still echoing (the client reads none of it back).
        static let requestSizes = [0, 100, 256 * 1024, 1 << 20]
        /// RSS may exceed its warmed-up baseline by this much once the
        /// connections are gone: each loop keeps up to 64 freed read buffers
        /// of 64 KiB for reuse (ReadBufferPool), 4 MiB in all (the listener
        /// accepts a burst at once, so the pool fills), plus 1 MiB of
        /// allocator slack. The async server runs a loop per CPU this process
        /// may use (it inherits the affinity), the poll server one.
        static func residentTolerance(loops: Int) -> Int { loops * (4 << 20) + (1 << 20) }

        @Test("200 clients of weft-echo that send part of a request and reset the connection (SO_LINGER 0) leave it running and echoing for a well-behaved client, with its descriptors back at their baseline and its RSS within 4 MiB per loop + 1 MiB of it, and it exits with status 0 on SIGTERM",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [[], ["--poll"]])
        func clientsResetMidRequest(options: [String]) throws {
            let server = try Faults.launch("weft-echo", options)
            defer { server.child.stop() }
            let runtime = try Runtime()
            // Warm-up, then the baselines.
            #expect(try Faults.echoed(by: server.address, runtime: runtime) == Faults.message)
            let descriptors = server.restingDescriptors()
            let resident = server.residentBytes

            let port = server.address.port
            let resets = AtomicCounter()
            let finished = Faults.onThreads(Self.threads) { thread in
                for client in 0..<Self.clientsPerThread {
                    guard let raw = try? RawSocket.connected(to: port) else { continue }
                    let size = Self.requestSizes[(thread + client) % Self.requestSizes.count]
                    if size > 0 {
                        raw.send([UInt8](repeating: UInt8(truncatingIfNeeded: client), count: size), within: .seconds(1))
                    }
                    raw.resetAndClose()
                    resets.increment()
                }
            }
            #expect(finished, "the resetting clients did not finish within 20 s")
            #expect(resets.value == Self.threads * Self.clientsPerThread, "only \(resets.value) clients connected")

            #expect(server.isRunning, "weft-echo died")
            #expect(try Faults.echoed(by: server.address, runtime: runtime) == Faults.message)
            let after = server.descriptorsSettled(at: descriptors)
            #expect(after == descriptors, "weft-echo's descriptors: \(descriptors) before, \(after) after the resets")
            let tolerance = Self.residentTolerance(loops: options.contains("--poll") ? 1 : LoopGroup.allowedCPUs.count)
            let growth = server.residentGrowthSettled(above: resident, tolerance: tolerance)
            print("weft-echo \(options) after 200 resets: descriptors \(descriptors) -> \(after), RSS \(growth >> 10) KiB above baseline")
            #expect(growth <= tolerance, "weft-echo's RSS grew by \(growth >> 10) KiB")
            TimingSensitive.SampleProcessTests.expectCleanExitOnSIGTERM(server.child)
        }
    }
}
