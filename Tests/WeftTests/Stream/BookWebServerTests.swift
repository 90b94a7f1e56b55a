import HelloServer
import Testing
import Weft

/// The async book's web server as the book writes it ("Handling Connections
/// Concurrently"): `incoming.forEachConcurrent(limit: nil) { stream in
/// handleConnection(stream) }`, every connection a future in flight in one task.
extension TimingSensitive {
    @Suite("The book's web server: incoming.forEachConcurrent over real sockets")
    struct BookWebServerTests {
        @Test("40 concurrent requests with /sleep among them are all answered, / while the sleeps run; closing the listener ends the server only after the sleeps are answered")
        func servesConcurrentlyAndDrains() throws {
            let runtime = try Runtime()
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            let server = runtime.spawn(listener.incoming.forEachConcurrent(limit: nil) { stream in
                // 2 s: the 35 fast requests on this one loop must be done
                // before the sleeps end, on a loaded machine too (as the
                // hello sample's own test does).
                handleConnection(stream, sleepDuration: .seconds(2))
            })
            let get = TimingSensitive.HelloServerSocketTests.get
            let start = ContinuousClock.now
            let sleepers = (0..<5).map { _ in runtime.spawn(get("GET /sleep HTTP/1.1\r\nHost: test\r\n\r\n", address)) }
            let others = (0..<35).map { _ in runtime.spawn(get("GET / HTTP/1.1\r\nHost: test\r\n\r\n", address)) }
            let fast = try runtime.block(on: timeoutFuture(.seconds(10), joinAll(others))).get().map { try $0.get().get() }
            // The listener closes while the five sleeps are still in flight.
            listener.close()
            let slow = try runtime.block(on: timeoutFuture(.seconds(20), joinAll(sleepers))).get().map { try $0.get().get() }
            try runtime.block(on: timeoutFuture(.seconds(5), server)).get().get()

            for (response, _) in fast + slow {
                #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
                #expect(response.hasSuffix(Pages.hello))
            }
            let firstSleepDone = try #require(slow.map(\.1).min())
            let lastSleepDone = try #require(slow.map(\.1).max())
            let lastFastDone = try #require(fast.map(\.1).max())
            #expect(lastFastDone < firstSleepDone, "a / request waited for a /sleep")
            #expect(firstSleepDone - start >= .seconds(2))
            // One after the other, the five would take 10 s.
            #expect(lastSleepDone - start < .seconds(9), "the sleeps ran one after the other")
        }
    }
}
