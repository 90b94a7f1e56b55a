import Glibc
import Testing
import Weft

/// Issue 6 ("Reliability"): connection churn leaves nothing behind.
extension TimingSensitive {
    @Suite("Ten thousand connect/close cycles leave no descriptor and no memory behind")
    struct TenThousandConnectCloseCyclesTests {
        static let cycles = 10_000
        static let warmUpCycles = 500
        static let slots = 32

        @Test("10,000 connect/close cycles, 32 at a time, against a listener in the same runtime end with every connection accepted and closed, the runtime's handles and tasks and this process's descriptors back at their baselines")
        func againstAListenerInTheSameRuntime() throws {
            let runtime = try Runtime()
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            // The server reads each connection to its end (the client's
            // half-close), then drops it, which closes it.
            let accepted = NetTest.Cell(0)
            let server = runtime.spawn(NetTest.acceptLoop(listener, accepted: accepted) { stream in
                stream.readToEnd().map { _ in () }
            })
            /// Runs `count` cycles, then waits until the server has accepted and
            /// finished every connection so far (only the accept loop is left).
            func churn(_ count: Int, acceptedInAll total: Int) throws {
                let cycles = try runtime.block(on: timeoutFuture(.seconds(30),
                    Faults.connectCloseCycles(to: address, count: count, slots: Self.slots))).get()
                #expect(cycles.isSuccess, "the clients' cycles failed: \(cycles)")
                let settled = try runtime.block(on: timeoutFuture(.seconds(5), NetTest.eventually {
                    accepted.value == total && runtime.statistics.tasksAlive == 2  // accept loop + this wait
                }))
                #expect(settled.isSuccess,
                        "accepted \(accepted.value) of \(total); \(runtime.statistics.tasksAlive) task(s) alive")
            }

            // Warm-up: the read-buffer pool, the timer wheel and the test's own
            // allocations reach their working size.
            try churn(Self.warmUpCycles, acceptedInAll: Self.warmUpCycles)
            let handles = runtime.openHandleCount
            let descriptors = Faults.openDescriptors()

            let (_, elapsed) = try measure {
                try churn(Self.cycles, acceptedInAll: Self.warmUpCycles + Self.cycles)
            }
            print("10,000 in-process connect/close cycles: \(elapsed)")

            #expect(runtime.openHandleCount == handles, "the runtime holds \(runtime.openHandleCount - handles) more handle(s)")
            #expect(runtime.pendingTimerCount == 0)
            // Descriptors: back to the baseline, give or take what other tests
            // running in parallel in this process hold (see inProcessDescriptorSlack).
            let after = Faults.settle(within: .seconds(3), { Faults.openDescriptors() }) {
                $0 <= descriptors + Faults.inProcessDescriptorSlack
            }
            #expect(after <= descriptors + Faults.inProcessDescriptorSlack,
                    "descriptors: \(descriptors) before, \(after) after 10,000 cycles")

            listener.close()
            server.abort()
            try runtime.block(on: yieldNow())
            #expect(runtime.statistics.tasksAlive == 0)
            #expect(runtime.openHandleCount == handles - 1, "only the runtime's own handles are left")
        }

        /// RSS may exceed its warmed-up baseline by this much after the cycles.
        static let residentTolerance = 1 << 20

        @Test("10,000 connect/close cycles, 32 at a time, against weft-echo in a child process leave its descriptors at their baseline and its RSS within 1 MiB of its warmed-up baseline, and it still echoes and exits with status 0 on SIGTERM",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [[], ["--poll"]])
        func againstWeftEchoInAChildProcess(options: [String]) throws {
            let server = try Faults.launch("weft-echo", options)
            defer { server.child.stop() }
            let runtime = try Runtime()

            // Warm-up, then the baselines.
            let warmUp = try runtime.block(on: timeoutFuture(.seconds(30),
                Faults.connectCloseCycles(to: server.address, count: Self.warmUpCycles, slots: Self.slots))).get()
            #expect(warmUp.isSuccess, "the warm-up cycles failed: \(warmUp)")
            #expect(try Faults.echoed(by: server.address, runtime: runtime) == Faults.message)
            let descriptorBaseline = server.restingDescriptors()
            let resident = server.residentBytes

            let (cycles, elapsed) = try measure {
                try runtime.block(on: timeoutFuture(.seconds(30),
                    Faults.connectCloseCycles(to: server.address, count: Self.cycles, slots: Self.slots))).get()
            }
            print("10,000 connect/close cycles against weft-echo \(options): \(elapsed)")
            #expect(cycles.isSuccess, "the clients' cycles failed: \(cycles)")

            #expect(server.isRunning, "weft-echo died during the cycles")
            let after = server.descriptorsSettled(at: descriptorBaseline)
            #expect(after == descriptorBaseline, "weft-echo's descriptors: \(descriptorBaseline) before, \(after) after")
            let growth = server.residentGrowthSettled(above: resident, tolerance: Self.residentTolerance)
            #expect(growth <= Self.residentTolerance, "weft-echo's RSS grew by \(growth >> 10) KiB")
            #expect(try Faults.echoed(by: server.address, runtime: runtime) == Faults.message)
            TimingSensitive.SampleProcessTests.expectCleanExitOnSIGTERM(server.child)
        }
    }
}
