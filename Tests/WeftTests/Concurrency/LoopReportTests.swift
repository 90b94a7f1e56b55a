import Testing
import Weft

extension ConcurrencyBridge {
    /// Async code on a loop reaches its runtime, and a loop's report counts
    /// the Swift tasks on it (issue 23, item 3).
    @Suite("A LoopThread's runtime, seen from async code")
    struct LoopReportTests {
        @Test("code inside loop.run { } runs with its loop as the current runtime: TCPListener.bind needs no runtime there, and the report is that loop's")
        func runSeesItsLoop() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let (port, reported) = try await loop.run { () throws -> (Int, Bool) in
                let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
                defer { listener.close() }
                return (try listener.localAddress.port, Runtime.currentReport() != nil)
            }
            #expect(port != 0)
            #expect(reported)
        }

        @Test("a loop's report counts the Swift tasks spawn started there and still running, and forgets them when they end")
        func reportCountsSwiftTasks() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let token = CancellationToken()
            var sleepers: [Task<Void, any Error>] = []
            for _ in 0..<10 {
                sleepers.append(loop.spawn { try await token.cancelled() })
            }
            let during = try await awaitWithin(.seconds(20), loop.spawn { Runtime.currentReport()?.statistics.swiftTasksAlive })
            // The ten, and the probe itself.
            #expect(during == 11)
            token.cancel()
            for sleeper in sleepers { _ = try await awaitWithin(.seconds(20), sleeper) }
            // Each task leaves the count before its value is delivered.
            let after = try await awaitWithin(.seconds(20), loop.spawn { Runtime.currentReport()?.statistics.swiftTasksAlive })
            #expect(after == 1)
            let text = try await awaitWithin(.seconds(20), loop.spawn { Runtime.currentReport()?.description ?? "" })
            #expect(text.contains("swift tasks: 1 alive"), "\(text)")
        }
    }
}
