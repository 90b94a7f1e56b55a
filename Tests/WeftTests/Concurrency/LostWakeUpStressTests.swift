import Glibc
import Testing
import Weft

/// A blocking IPv4 client socket on a plain thread: a writer whose timing owes
/// nothing to Weft.
private struct BlockingWriter {
    let fd: Int32

    init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        guard connected == 0 else {
            _ = Glibc.close(fd)
            return nil
        }
    }

    /// Writes one byte; false on error.
    func write(_ byte: UInt8) -> Bool {
        var byte = byte
        return Glibc.write(fd, &byte, 1) == 1
    }

    func close() { _ = Glibc.close(fd) }
}

/// The byte sent at position `index` of a stress run.
private func byte(at index: Int) -> UInt8 { UInt8(truncatingIfNeeded: index &* 31 &+ 7) }

/// Reads `count` bytes one `read(upTo: 1)` at a time and checks each; then expects
/// end of stream. Returns the number of wrong bytes.
private func readOneByOne(_ stream: TCPStream, count: Int) async throws -> Int {
    var wrong = 0
    for index in 0..<count {
        let bytes = try await stream.read(upTo: 1)
        if bytes != [byte(at: index)] { wrong += 1 }
        if bytes.isEmpty { return wrong + (count - index - 1) }
    }
    if try await !stream.read(upTo: 1).isEmpty { wrong += 1 }
    return wrong
}

extension TimingSensitive.ConcurrencyBridgeTiming {
    /// docs/ARCHITECTURE.md, "The Swift concurrency bridge", lost wake-ups: "if
    /// nothing is buffered, await a continuation" must not miss data that lands
    /// in between. Every read below races its byte's arrival;
    /// a lost wake-up shows up as a read that never returns (bounded by a deadline).
    @Suite("Lost wake-ups: reads racing data arrival")
    struct LostWakeUpStressTests {
        static let count = 10_000

        @Test("10,000 one-byte reads race one-byte writes from another LoopThread and none hangs")
        func readsRaceWritesFromAnotherLoop() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let writerLoop = try LoopThread(name: "weft-writer")
            defer { writerLoop.shutdown() }
            let handlesBefore = try await NetTest.handleBaseline(on: loop)
            let writerHandlesBefore = try await NetTest.handleBaseline(on: writerLoop)
            let (listener, address) = try await NetTest.bindLoopback(on: loop)
            defer { listener.close() }
            let reader = loop.spawn { () async throws -> Int in
                let server = try await listener.accept()
                defer { server.close() }
                return try await readOneByOne(server, count: Self.count)
            }
            let writer = writerLoop.spawn { () async throws -> Void in
                let client = try await TCPStream.connect(to: address)
                defer { client.close() }
                try client.setNoDelay(true)
                for index in 0..<Self.count {
                    try await client.write([byte(at: index)])
                    // Vary the timing so that reads find the byte sometimes there, sometimes not.
                    if index % 7 == 0 { await Task.yield() }
                    if index % 101 == 0 { try await Weft.sleep(for: .microseconds(50)) }
                }
                try await client.shutdown()
            }
            try await awaitWithin(.seconds(30), writer)
            let wrong = try await awaitWithin(.seconds(30), reader)
            #expect(wrong == 0)
            listener.close()
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore)
            try await NetTest.expectNothingLeftOpen(on: writerLoop, handlesBefore: writerHandlesBefore)
        }

        @Test("10,000 one-byte reads race one-byte writes from a plain thread with a blocking socket and none hangs")
        func readsRaceWritesFromPlainThread() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let handlesBefore = try await NetTest.handleBaseline(on: loop)
            let (listener, address) = try await NetTest.bindLoopback(on: loop)
            defer { listener.close() }
            let reader = loop.spawn { () async throws -> Int in
                let server = try await listener.accept()
                defer { server.close() }
                return try await readOneByOne(server, count: Self.count)
            }
            let writeFailures = AtomicCounter()
            let writing = ForeignThread {
                guard let writer = BlockingWriter(port: address.port) else {
                    writeFailures.increment()
                    return
                }
                defer { writer.close() }
                // Bursts of 1 to 16 bytes separated by pauses of 0 to 30 µs: the reader
                // finds its byte sometimes buffered, sometimes not yet there.
                var random = SystemRandomNumberGenerator()
                var index = 0
                while index < Self.count {
                    let burst = min(Int.random(in: 1...16, using: &random), Self.count - index)
                    for _ in 0..<burst {
                        if !writer.write(byte(at: index)) {
                            writeFailures.increment()
                            return
                        }
                        index += 1
                    }
                    let pause = ContinuousClock.now + .microseconds(Int.random(in: 0...30, using: &random))
                    while ContinuousClock.now < pause { sched_yield() }
                }
            }
            let wrong = try await awaitWithin(.seconds(30), reader)
            #expect(wrong == 0)
            #expect(writeFailures.value == 0)
            // The reader saw end of stream, so the writer thread has closed its socket.
            _ = writing
            listener.close()
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore)
        }

        @Test("10,000 one-byte ping-pong round trips between two LoopThreads: every read waits for its byte, none hangs")
        func pingPongAcrossLoops() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let clientLoop = try LoopThread(name: "weft-client")
            defer { clientLoop.shutdown() }
            let handlesBefore = try await NetTest.handleBaseline(on: loop)
            let clientHandlesBefore = try await NetTest.handleBaseline(on: clientLoop)
            let (listener, address) = try await NetTest.bindLoopback(on: loop)
            defer { listener.close() }
            let server = loop.spawn { () async throws -> Int in
                let stream = try await listener.accept()
                defer { stream.close() }
                try stream.setNoDelay(true)
                var echoed = 0
                while true {
                    let bytes = try await stream.read(upTo: 1)
                    if bytes.isEmpty { return echoed }
                    try await stream.write(bytes)
                    echoed += 1
                }
            }
            let client = clientLoop.spawn { () async throws -> Int in
                let stream = try await TCPStream.connect(to: address)
                defer { stream.close() }
                try stream.setNoDelay(true)
                var wrong = 0
                for index in 0..<Self.count {
                    try await stream.write([byte(at: index)])
                    if try await stream.read(upTo: 1) != [byte(at: index)] { wrong += 1 }
                }
                try await stream.shutdown()
                return wrong
            }
            let wrong = try await awaitWithin(.seconds(30), client)
            let echoed = try await awaitWithin(.seconds(30), server)
            #expect(wrong == 0)
            #expect(echoed == Self.count)
            listener.close()
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore)
            try await NetTest.expectNothingLeftOpen(on: clientLoop, handlesBefore: clientHandlesBefore)
        }
    }
}
