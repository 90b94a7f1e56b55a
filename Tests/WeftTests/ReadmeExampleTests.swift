import Testing
import Weft

/// The README's examples, compiled and run so they never rot.
@Suite("README examples")
struct ReadmeExampleTests {
    /// A future written by hand: ready after `remaining` polls, waking itself in between.
    struct Countdown: Future {
        var remaining: Int
        mutating func poll(_ context: inout Context) -> Poll<String> {
            if remaining == 0 { return .ready("liftoff") }
            remaining -= 1
            context.waker.wake()
            return .pending
        }
    }

    @Test("the first example runs and yields what its comments say")
    func firstExample() throws {
        let runtime = try Runtime()
        let ticker = runtime.spawn(interval(every: .milliseconds(10)).prefix(3).fold(0) { n, _ in n + 1 })
        let (text, _) = try runtime.block(on: join(Countdown(remaining: 3), sleepFuture(for: .milliseconds(50))))
        let result = try runtime.block(on: timeoutFuture(.seconds(1), ticker))
        #expect(text == "liftoff")
        #expect(try result.get().get() == 3)
    }

    @Test("the deterministic-runtime example passes under every seed it names")
    func deterministicExample() throws {
        try Runtime.forEachSeed(0..<100) { runtime, seed in
            let outcome = try runtime.block(on: timeoutFuture(.seconds(5), sleepFuture(for: .seconds(4))))
            #expect((try? outcome.get()) != nil, "seed \(seed)")
            #expect(runtime.virtualTimeElapsed == .seconds(4))
        }
    }

    @Test("the async echo example serves a client")
    func asyncEchoExample() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let bound = try await loop.spawn { () async throws -> SocketAddress in
            let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
            let local = try listener.localAddress
            loop.spawn {
                for try await connection in listener.connections {
                    loop.spawn {
                        while case let bytes = try await connection.read(), !bytes.isEmpty {
                            try await connection.write(bytes)
                        }
                    }
                }
            }
            return local
        }.value
        let reply = try await loop.spawn { () async throws -> [UInt8] in
            let client = try await TCPStream.connect(to: bound)
            try await client.write(Array("ping".utf8))
            return try await client.read()
        }.value
        #expect(reply == Array("ping".utf8))
    }

    @Test("the LoopGroup example serves a client on every loop's port and stops")
    func loopGroupExample() async throws {
        let group = try LoopGroup(loops: 2)
        defer { group.shutdown() }
        let server = try await group.serve(SocketAddress("127.0.0.1:0")) { connection in
            while let bytes = try? await connection.read(), !bytes.isEmpty {
                try? await connection.write(bytes)
            }
        }
        let address = server.localAddress
        let reply = try await group.next().spawn { () async throws -> [UInt8] in
            let client = try await TCPStream.connect(to: address)
            try await client.write(Array("ping".utf8))
            return try await client.read()
        }.value
        #expect(reply == Array("ping".utf8))
        #expect(server.connectionsPerLoop.reduce(0, +) == 1)
        await server.close()
    }
}
