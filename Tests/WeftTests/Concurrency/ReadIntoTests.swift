import Testing
import Weft

extension ConcurrencyBridge {
    /// `TCPStream.read(into:)`: the caller's buffer, lent to the stream while
    /// the read waits, and every way a loan can end.
    @Suite("async read(into:)") struct ReadIntoTests {
        @Test("read(into:) echoes 1 MiB in order through a reused buffer, the slices written back, and returns 0 at end of stream")
        func echoesInOrder() async throws {
            let sent = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
            let echoed = try await withConnectedPair { loop, _, client, server in
                try await awaitWithin(.seconds(30), loop.spawn { () async throws -> ([UInt8], Int, Int) in
                    let echo = loop.spawn { () async throws -> Int in
                        // Smaller than a pooled buffer, so big bursts arrive both
                        // straight into it and through the pool's chunks.
                        var buffer = [UInt8](repeating: 0, count: 10_000)
                        var reads = 0
                        while true {
                            let count = try await server.read(into: &buffer)
                            #expect(buffer.count == 10_000)
                            if count == 0 { break }
                            reads += 1
                            try await server.write(buffer[..<count])
                        }
                        server.close()
                        return reads
                    }
                    let writer = loop.spawn { () async throws in
                        try await client.write(sent)
                        try await client.shutdown()
                    }
                    var back: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 100_000)  // bigger than a pooled buffer
                    while true {
                        let count = try await client.read(into: &buffer)
                        if count == 0 { break }
                        back += buffer[..<count]
                    }
                    try await writer.value
                    let reads = try await echo.value
                    let afterEnd = try await client.read(into: &buffer)
                    return (back, reads, afterEnd)
                })
            }
            #expect(echoed.0.count == sent.count)
            #expect(echoed.0 == sent)
            #expect(echoed.1 >= sent.count / 10_000)
            #expect(echoed.2 == 0)
        }

        @Test("bytes that reach the buffer of a cancelled read(into:) are not lost: the next read, of either kind, gets them first")
        func cancelledLoanKeepsItsBytes() async throws {
            try await withConnectedPair { loop, _, client, server in
                for nextReadIsInto in [false, true] {
                    let reader = loop.spawn { () async throws -> [UInt8] in
                        var buffer = [UInt8](repeating: 0, count: 64)
                        do {
                            _ = try await server.read(into: &buffer)
                        } catch is CancellationError {
                            #expect(buffer.count == 64, "the caller keeps a buffer of its size")
                            throw CancellationError()
                        }
                        return buffer
                    }
                    try await Task.sleep(for: .milliseconds(10))  // lets it lend its buffer and wait
                    reader.cancel()
                    let end = await outcome { try await awaitWithin(.seconds(20), reader) }
                    #expect(isCancellation(end), "got \(end)")

                    // The loan outlives the dropped read: these bytes land in its buffer.
                    let received = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [UInt8] in
                        try await client.write([1, 2, 3])
                        try await client.write([4, 5])
                        var received: [UInt8] = []
                        var buffer = [UInt8](repeating: 0, count: 4)
                        while received.count < 5 {
                            if nextReadIsInto {
                                received += buffer[..<(try await server.read(into: &buffer))]
                            } else {
                                received += try await server.read(upTo: 4)
                            }
                        }
                        return received
                    })
                    #expect(received == [1, 2, 3, 4, 5], "next read is read(into:): \(nextReadIsInto)")
                }
            }
        }

        @Test("two read(into:) waiting on one stream at once each get their own buffer back, untouched past the byte it read (the first got a new zeroed one)")
        func concurrentReadsKeepTheirBuffers() async throws {
            try await withConnectedPair { loop, _, client, server in
                let done = AtomicCounter()
                let readers = [UInt8(0xAA), 0xBB].map { fill in
                    loop.spawn { () async throws -> (count: Int, buffer: [UInt8]) in
                        var buffer = [UInt8](repeating: fill, count: 8)
                        let count = try await server.read(into: &buffer)
                        done.increment()
                        return (count, buffer)
                    }
                }
                // The first lends its buffer and waits; the second's loan then ends the first's.
                try await Task.sleep(for: .milliseconds(20))
                // One byte at a time, so that each reader gets exactly one.
                try await awaitWithin(.seconds(20), loop.spawn { try await client.write([1]) })
                // Not a fixed time: the loop held up on a loaded machine read
                // both bytes at once, into one buffer.
                try await waitUntil { done.value == 1 }
                try await awaitWithin(.seconds(20), loop.spawn { try await client.write([2]) })
                var received: [UInt8] = []
                for (reader, fill) in zip(readers, [UInt8(0xAA), 0xBB]) {
                    let (count, buffer) = try await awaitWithin(.seconds(20), reader)
                    #expect(count == 1)
                    #expect(buffer.count == 8)
                    #expect(buffer[1...].allSatisfy { $0 == fill }, "\(buffer)")
                    received.append(buffer[0])
                }
                #expect(received.sorted() == [1, 2])
            }
        }

        @Test("read(into:) waiting when its stream is closed throws a closed error and hands back a buffer of its size; an empty buffer reads 0 at once")
        func closeWhileLent() async throws {
            try await withConnectedPair { loop, _, client, server in
                let empty = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> Int in
                    var none: [UInt8] = []
                    return try await server.read(into: &none)
                })
                #expect(empty == 0)

                let reader = loop.spawn { () async -> (Result<Int, any Error>, Int) in
                    var buffer = [UInt8](repeating: 7, count: 32)
                    let result = await outcome { try await server.read(into: &buffer) }
                    return (result, buffer.count)
                }
                try await Task.sleep(for: .milliseconds(10))
                server.close()
                let (result, count) = try await awaitWithin(.seconds(20), reader)
                #expect(count == 32)
                guard case .failure(let error as WeftError) = result else {
                    Issue.record("expected a WeftError, got \(result)")
                    return
                }
                #expect(error.kind == .closed)
                #expect("\(error)".contains("read"), "\(error)")
            }
        }
    }
}
