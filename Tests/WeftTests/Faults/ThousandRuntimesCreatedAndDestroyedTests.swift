import Dispatch
import Glibc
import Testing
import Weft

/// Issue 6 ("Reliability"): a process that creates and destroys runtimes over
/// and over (a test suite, a tool that runs one per job) does not accumulate
/// descriptors: each runtime's loop is closed, whatever outlived it.
extension TimingSensitive {
    @Suite("A thousand runtimes created and destroyed in one process leave no descriptor behind")
    struct ThousandRuntimesCreatedAndDestroyedTests {
        static let runtimes = 1_000
        static let warmUpRuntimes = 10

        /// What outlives a runtime in a run of ``useOnce(_:keep:)``.
        final class Leftovers {
            var listeners: [TCPListener] = []
            var streams: [TCPStream] = []
            var signals: [SignalStream] = []
        }

        /// Creates a runtime, uses it briefly and destroys it. Run `index`
        /// spawns a task that sleeps 1 ms and binds a listener; every 10th run
        /// also connects a client that exchanges a byte with the server. Then:
        /// when `index % 4 == 0` the listener (and the streams) are kept in
        /// `keep`, to outlive the runtime until the caller drops them; when
        /// `index % 4 == 2` they are closed first; otherwise they are simply
        /// dropped with the runtime. Even runs shut the runtime down (checking
        /// that only the kept handles are left open) before dropping it; odd
        /// runs just drop it. Returns whether everything worked.
        static func useOnce(_ index: Int, keep: Leftovers) throws -> Bool {
            let runtime = try Runtime()
            let task = runtime.spawn(sleepFuture(for: .milliseconds(1)).map { index })
            let listener = try NetTest.bindLoopback(runtime)
            var worked = try runtime.block(on: timeoutFuture(.seconds(5), task)).get().isSuccess
            var streams: [TCPStream] = []
            if index.isMultiple(of: 10) {
                let address = try listener.localAddress
                let (connected, accepted) = try runtime.block(on: timeoutFuture(.seconds(5),
                    join(TCPStream.connectFuture(to: address), listener.acceptFuture()))).get()
                let client = try connected.get()
                let server = try accepted.get()
                let echoed = try runtime.block(on: timeoutFuture(.seconds(5),
                    client.writeAll([UInt8(truncatingIfNeeded: index)]).onSuccess { server.readExact(1) })).get()
                worked = worked && (try? echoed.get()) == [UInt8(truncatingIfNeeded: index)]
                streams = [client, server]
            }
            switch index % 4 {
            case 0:
                keep.listeners.append(listener)
                keep.streams += streams
            case 2:
                listener.close()
                for stream in streams { stream.close() }
            default:
                break
            }
            if index.isMultiple(of: 2) {
                try runtime.shutdown()
                let kept = index.isMultiple(of: 4) ? 1 + streams.count : 0
                worked = worked && runtime.openHandleCount == kept
            }
            return worked
        }

        @Test("1,000 runtimes, each spawning a sleeping task and binding a listener (every 10th also a connection), then shut down or dropped, some outlived by their listener and streams, leave this process's descriptors at their baseline")
        func createAndDestroyAThousandRuntimes() throws {
            for index in 0..<Self.warmUpRuntimes {
                #expect(try Self.useOnce(index, keep: Leftovers()))
            }
            let descriptors = Faults.openDescriptors()
            var failures = 0
            let (_, elapsed) = try measure {
                for index in 0..<Self.runtimes {
                    let keep = Leftovers()
                    if try !Self.useOnce(index, keep: keep) { failures += 1 }
                    // The leftovers go now, after their runtime.
                }
            }
            print("1,000 runtimes created, used and destroyed: \(elapsed)")
            #expect(failures == 0, "\(failures) runs did not work")
            let after = Faults.settle(within: .seconds(3), { Faults.openDescriptors() }) {
                $0 <= descriptors + Faults.inProcessDescriptorSlack
            }
            #expect(after <= descriptors + Faults.inProcessDescriptorSlack,
                    "descriptors: \(descriptors) before 1,000 runtimes, \(after) after")
        }

        @Test("1,000 runtimes, each outlived by a signal stream installed on it, leave this process's descriptors at their baseline")
        func runtimesOutlivedBySignalStreams() throws {
            let descriptors = Faults.openDescriptors()
            var failures = 0
            for index in 0..<Self.runtimes {
                var stream = signals(SIGWINCH)
                do {
                    let runtime = try Runtime()
                    do {
                        try stream.install(runtime: runtime)
                    } catch {
                        failures += 1
                    }
                    if index.isMultiple(of: 2) { try runtime.shutdown() }
                }
                _ = stream  // dropped here, after its runtime
            }
            #expect(failures == 0)
            let after = Faults.settle(within: .seconds(3), { Faults.openDescriptors() }) {
                $0 <= descriptors + Faults.inProcessDescriptorSlack
            }
            #expect(after <= descriptors + Faults.inProcessDescriptorSlack,
                    "descriptors: \(descriptors) before 1,000 runtimes, \(after) after")
        }

        @Test("100 runtimes, each dropped while a spawnBlocking closure runs on libuv's thread pool, leave this process's descriptors at their baseline")
        func runtimesDroppedWhileBlockingWorkRuns() throws {
            let descriptors = Faults.openDescriptors()
            var started = 0
            for _ in 0..<100 {
                let running = DispatchSemaphore(value: 0)
                let release = DispatchSemaphore(value: 0)
                do {
                    let runtime = try Runtime()
                    runtime.spawn(spawnBlocking { () -> Int in
                        running.signal()
                        release.wait()
                        return 1
                    })
                    try runtime.block(on: yieldNow())  // the work is submitted
                    if running.wait(timeout: .now() + 5) == .success { started += 1 }
                }  // the runtime is dropped while the closure runs
                release.signal()
            }
            #expect(started == 100, "only \(started) closures started")
            // 3 s: the loops close on background threads, which a loaded
            // machine may not have run yet.
            let after = Faults.settle(within: .seconds(3), { Faults.openDescriptors() }) {
                $0 <= descriptors + Faults.inProcessDescriptorSlack
            }
            // Work that had started when its runtime went away finishes on a
            // background thread that then closes the loop (EventLoop.deinit).
            #expect(after <= descriptors + Faults.inProcessDescriptorSlack,
                    "descriptors: \(descriptors) before 100 runtimes, \(after) after")
        }
    }
}
