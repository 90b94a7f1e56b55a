import Glibc
import Testing
import Weft

/// `RuntimeOptions.connectionBufferBudget`: what a loop's connections may hold
/// together (issue 23, item 2).
extension TimingSensitive {
    @Suite("The loop's connection buffer budget")
    struct ConnectionBufferBudgetTests {
        /// Peak bytes held and read pauses on an in-process echo server whose
        /// loop has `budget`, while `clients` raw sockets send without reading
        /// until the server stops taking their bytes; checks on the way that a
        /// well-behaved client is echoed while they hang on, and that the bytes
        /// held go back to zero once they close.
        static func neverReaders(_ clients: Int, budget: Int) throws -> RuntimeStatistics {
            var options = RuntimeOptions()
            options.connectionBufferBudget = budget
            let runtime = try Runtime(options: options)
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            runtime.spawn(NetTest.acceptLoop(listener, serve: NetTest.echo))

            let sockets = Shared<[RawSocket]>([])
            let stalled = Shared<Int>(0)
            let chunk = [UInt8](repeating: 0x6E, count: 64 * 1024)
            let threads = (0..<clients).map { _ in
                NetTest.PeerThread {
                    guard let raw = try? RawSocket.connected(to: address.port) else { return }
                    sockets.update { $0.append(raw) }
                    let outcome = raw.sendUntilStalled(chunk: chunk, stall: .milliseconds(300), limit: .seconds(10))
                    if outcome.stalled { stalled.update { $0 += 1 } }
                }
            }
            // The server runs on this thread while the clients push.
            while !threads.allSatisfy({ $0.join(within: 0.001) }) {
                try runtime.block(on: sleepFuture(for: .milliseconds(10)))
            }
            #expect(stalled.value == clients, "\(stalled.value) of \(clients) clients were held back")
            // A well-behaved client, on a runtime of its own (a client on the
            // budgeted loop would hold queued writes too, and pause with them).
            let echoed = Shared<[UInt8]?>(nil)
            let wellBehaved = NetTest.PeerThread {
                let client = try? Runtime()
                echoed.update { $0 = client.flatMap { try? Faults.echoed(by: address, runtime: $0) } }
            }
            while !wellBehaved.join(within: 0.001) {
                try runtime.block(on: sleepFuture(for: .milliseconds(10)))
            }
            #expect(echoed.value == Faults.message, "a well-behaved client was not echoed while \(clients) clients sat on the budget")
            let statistics = runtime.statistics

            for raw in sockets.value { raw.close() }
            let drained = Faults.settle(within: .seconds(5), {
                (try? runtime.block(on: sleepFuture(for: .milliseconds(10)))) == nil ? -1 : runtime.statistics.connectionBytesHeld
            }, until: { $0 == 0 })
            #expect(drained == 0, "connections still hold \(drained) bytes after every client closed")
            listener.close()
            return statistics
        }

        @Test("with a 256 KiB budget, 16 clients that never read make the loop hold at most the budget plus 64 KiB each, and the reads of those that hold bytes pause; with the default budget the same clients make it hold more")
        func budgetBoundsWhatTheLoopHolds() throws {
            let budget = 256 << 10
            let small = try Self.neverReaders(16, budget: budget)
            let bound = budget + 16 * (64 << 10)
            print("16 never-readers, 256 KiB budget: peak \(small.connectionBytesHeldPeak >> 10) KiB held, \(small.readsPausedForBudget) read pauses")
            #expect(small.connectionBytesHeldPeak <= bound, "peak \(small.connectionBytesHeldPeak) bytes held, above \(bound)")
            // The first few connections fill the budget and stop at their own
            // limits without pausing for it; the rest pause.
            #expect(small.readsPausedForBudget >= 8, "only \(small.readsPausedForBudget) reads paused")

            let unlimited = try Self.neverReaders(16, budget: RuntimeOptions.defaultConnectionBufferBudget)
            print("16 never-readers, default budget: peak \(unlimited.connectionBytesHeldPeak >> 10) KiB held, \(unlimited.readsPausedForBudget) read pauses")
            #expect(unlimited.readsPausedForBudget == 0)
            #expect(unlimited.connectionBytesHeldPeak > small.connectionBytesHeldPeak + 16 * (32 << 10),
                    "the budget made little difference: \(small.connectionBytesHeldPeak) vs \(unlimited.connectionBytesHeldPeak) bytes")
        }

        @Test("a budget below 64 KiB, or a deterministic loop thread, is refused with a clear error")
        func badOptions() {
            var options = RuntimeOptions()
            options.connectionBufferBudget = 65_535
            #expect(throws: WeftError.self) { _ = try Runtime(options: options) }
            #expect(throws: WeftError.self) { _ = try LoopThread(options: .deterministic(seed: 1)) }
            do {
                _ = try Runtime(options: options)
            } catch {
                #expect(error.kind == .invalidArgument)
                #expect("\(error)".contains("connectionBufferBudget 65535"), "\(error)")
            }
        }
    }
}
