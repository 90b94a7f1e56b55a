import Testing
import Weft

extension ConcurrencyBridge {
    /// Several tasks waiting on one stream at once: every one of them is woken
    /// by the event it waits for (a single waker slot kept only the last).
    @Suite("several tasks on one stream") struct SharedStreamTests {
        @Test("three tasks reading one stream at once (two read(upTo: 1), one read(into:) a 1-byte buffer) get the 3 bytes between them, and two more waiting readers both see the close")
        func concurrentReaders() async throws {
            try await withConnectedPair { loop, _, client, server in
                let readers = (0..<3).map { index in
                    loop.spawn { () async throws -> [UInt8] in
                        if index == 2 {
                            var buffer: [UInt8] = [0]
                            let count = try await server.read(into: &buffer)
                            return Array(buffer[..<count])
                        }
                        return try await server.read(upTo: 1)
                    }
                }
                try await Task.sleep(for: .milliseconds(20))  // all three wait
                try await awaitWithin(.seconds(20), loop.spawn { try await client.write([1, 2, 3]) })
                var received: [UInt8] = []
                for reader in readers { received += try await awaitWithin(.seconds(20), reader) }
                #expect(received.sorted() == [1, 2, 3])

                let waiting = (0..<2).map { _ in
                    loop.spawn { await outcome { try await server.read(upTo: 1) } }
                }
                try await Task.sleep(for: .milliseconds(20))
                server.close()
                for reader in waiting {
                    let result = try await awaitWithin(.seconds(20), reader)
                    guard case .failure(let error as WeftError) = result else {
                        Issue.record("expected a closed error, got \(result)")
                        continue
                    }
                    #expect(error.kind == .closed, "\(error)")
                }
            }
        }

        @Test("the halves of a split stream go to two tasks of its loop, one reading and one writing (they were not Sendable: the second task could not take its half)")
        func splitHalvesToTwoTasks() async throws {
            try await withConnectedPair { loop, _, client, server in
                let (reader, writer) = server.split()
                let reading = loop.spawn { try await value(of: reader.readExact(3)).get() }
                let writing = loop.spawn { try await value(of: writer.writeAll([9])).get() }
                try await awaitWithin(.seconds(20), loop.spawn { try await client.write([1, 2, 3]) })
                #expect(try await awaitWithin(.seconds(20), reading) == [1, 2, 3])
                try await awaitWithin(.seconds(20), writing)
                #expect(try await awaitWithin(.seconds(20), loop.spawn { try await client.read(upTo: 1) }) == [9])
            }
        }

        @Test("the halves of a split stream await writes, flush, shutdown and reads as the whole stream does, from a task off its loop: the read half still reads after the write half shut down, and sees the peer's end of stream")
        func splitHalvesAwait() async throws {
            try await withConnectedPair { loop, _, client, server in
                let (reader, writer) = server.split()
                // A plain task, not on the loop: each call hops to the stream's loop.
                try await awaitWithin(.seconds(20), Task {
                    try await writer.write([1, 2])
                    try await writer.write([0, 3, 4][1...])
                    try await writer.flush()
                    try await writer.shutdown()
                })
                let echoed = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [UInt8] in
                    var received: [UInt8] = []
                    while case let bytes = try await client.read(), !bytes.isEmpty { received += bytes }
                    try await client.write(received.reversed())
                    try await client.shutdown()
                    return received
                })
                #expect(echoed == [1, 2, 3, 4])
                let read = try await awaitWithin(.seconds(20), Task { () async throws -> [UInt8] in
                    var received = try await reader.read(upTo: 1)
                    var buffer = [UInt8](repeating: 0, count: 8)
                    while case let count = try await reader.read(into: &buffer), count > 0 { received += buffer[..<count] }
                    return received
                })
                #expect(read == [4, 3, 2, 1])
                let written = await outcome { try await awaitWithin(.seconds(20), Task { try await writer.write([5]) }) }
                guard case .failure(let error as WeftError) = written else {
                    Issue.record("a write after the write half shut down succeeded: \(written)")
                    return
                }
                #expect(error.kind == .closed, "\(error)")
            }
        }

        @Test("two tasks writing 8 MiB each into a stream whose peer does not read yet both finish once it reads; two tasks awaiting its shutdown behind a third writer finish without waiting for all its bytes")
        func concurrentWritersAndShutdowns() async throws {
            let size = 8 << 20  // more than loopback's socket buffers hold
            // In 64 KiB writes, so that the test holds little memory (a memory
            // growth measurement may run beside it).
            @Sendable func write(_ byte: UInt8, to stream: TCPStream) async throws {
                let chunk = [UInt8](repeating: byte, count: 64 << 10)
                for _ in 0..<(size / chunk.count) { try await stream.write(chunk) }
            }
            try await withConnectedPair { loop, _, client, server in
                let writers = [UInt8(1), 2].map { byte in
                    loop.spawn { try await write(byte, to: client) }
                }
                try await Task.sleep(for: .milliseconds(50))  // both wait for room
                let drained = try await awaitWithin(.seconds(30), loop.spawn { () async throws -> [Int] in
                    var counts = [0, 0, 0]
                    while counts[1] + counts[2] < 2 * size {
                        for byte in try await server.read() { counts[Int(byte)] += 1 }
                    }
                    return counts
                })
                for writer in writers { try await awaitWithin(.seconds(20), writer) }
                #expect(drained == [0, size, size])

                // Two shutdowns behind a writer waiting for room: they wait for
                // what was queued before them, not for the queue to empty
                // (which the writer, woken first each time it drains, put off
                // until its last chunk), and the writer's next write then
                // fails, shut down; everything queued still reaches the peer.
                let writer = loop.spawn { () async -> (bytes: Int, error: WeftError?) in
                    let chunk = [UInt8](repeating: 3, count: 64 << 10)
                    for index in 0..<(size / chunk.count) {
                        do { try await client.write(chunk) } catch { return (index * chunk.count, error as? WeftError) }
                    }
                    return (size, nil)
                }
                try await Task.sleep(for: .milliseconds(50))
                let shutdowns = (0..<2).map { _ in loop.spawn { try await client.shutdown() } }
                try await Task.sleep(for: .milliseconds(50))  // both wait for the queue to drain
                let rest = try await awaitWithin(.seconds(30), loop.spawn { () async throws -> Int in
                    var count = 0
                    while true {
                        let bytes = try await server.read()
                        if bytes.isEmpty { return count }
                        count += bytes.count
                    }
                })
                let (written, error) = try await awaitWithin(.seconds(20), writer)
                for shutdown in shutdowns { try await awaitWithin(.seconds(20), shutdown) }
                #expect(error?.code == .closed, "\(String(describing: error))")
                // The chunks written whole, and of the one cut short the part queued.
                #expect(rest >= written && rest < written + (64 << 10), "\(rest) bytes read, \(written) written whole")
            }
        }

        /// Makes `client`'s queue stay full: a small socket buffer, a task
        /// writing 64 KiB chunks of 1 until `stop` (returning how many), and a
        /// slow reader of `server` (4 KiB, then a 1 ms nap) that counts the
        /// bytes of 2 until end of stream; returns 50 ms later, both going.
        static func streamingBesideASlowReader(
            _ loop: LoopThread, _ client: TCPStream, _ server: TCPStream
        ) async throws -> (stop: Shared<Bool>, streaming: Task<Int, any Error>, reader: Task<Int, any Error>) {
            try await awaitWithin(.seconds(20), loop.spawn { try client.setOptions(SocketOptions(sendBufferSize: 16 << 10)) })
            let stop = Shared(false)
            let streaming = loop.spawn { () async throws -> Int in
                let chunk = [UInt8](repeating: 1, count: 64 << 10)
                var chunks = 0
                while !stop.value {
                    try await client.write(chunk)
                    chunks += 1
                }
                return chunks
            }
            let reader = loop.spawn { () async throws -> Int in
                var twos = 0
                while true {
                    let bytes = try await server.read(upTo: 4 << 10)
                    if bytes.isEmpty { return twos }
                    twos += bytes.count { $0 == 2 }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            return (stop, streaming, reader)
        }

        @Test("a one-byte write returns once its byte is written, while another task keeps the stream's queue full: it does not wait for the queue to empty")
        func smallWriteBesideAStreamingWriter() async throws {
            try await withConnectedPair { loop, _, client, server in
                let (stop, streaming, reader) = try await Self.streamingBesideASlowReader(loop, client, server)
                // Before the fix it returned only once the streaming writer stopped.
                try await awaitWithin(.seconds(20), loop.spawn { try await client.write([2]) })
                #expect(!stop.value)
                stop.value = true
                let chunks = try await awaitWithin(.seconds(20), streaming)
                #expect(chunks > 0)
                try await awaitWithin(.seconds(20), loop.spawn { try await client.shutdown() })
                #expect(try await awaitWithin(.seconds(20), reader) == 1)
            }
        }

        @Test("a file sent to a stream while another task keeps the stream's queue full is sent once what was written before it is out: it waited for the queue to empty, for as long as the other task wrote")
        func sendfileBesideAStreamingWriter() async throws {
            try await FileTest.withTemporaryDirectory { directory in
                try await withConnectedPair { loop, _, client, server in
                    let path = directory + "/data"
                    let file = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> File in
                        try await FileSystem.writeFile(path, contents: [UInt8](repeating: 2, count: 4096))
                        return try await File.open(path)
                    })
                    let (stop, streaming, reader) = try await Self.streamingBesideASlowReader(loop, client, server)
                    let sent = try await awaitWithin(.seconds(20), loop.spawn { try await file.send(to: client, count: 4096) })
                    #expect(sent == 4096)
                    #expect(!stop.value)
                    stop.value = true
                    #expect(try await awaitWithin(.seconds(20), streaming) > 0)
                    try await awaitWithin(.seconds(20), loop.spawn { try await client.shutdown() })
                    #expect(try await awaitWithin(.seconds(20), reader) == 4096)
                    file.close()
                }
            }
        }

        @Test("a flush and a shutdown return while another task keeps the stream's queue full: they wait for what was written before them, and the writer's next write then fails, shut down")
        func flushAndShutdownBesideAStreamingWriter() async throws {
            try await withConnectedPair { loop, _, client, server in
                try await awaitWithin(.seconds(20), loop.spawn { try client.setOptions(SocketOptions(sendBufferSize: 16 << 10)) })
                let streaming = loop.spawn { () async -> (chunks: Int, error: WeftError?) in
                    let chunk = [UInt8](repeating: 1, count: 64 << 10)
                    var chunks = 0
                    while true {
                        do {
                            try await client.write(chunk)
                            chunks += 1
                        } catch {
                            return (chunks, error as? WeftError)
                        }
                    }
                }
                let reader = loop.spawn { () async throws -> Int in
                    var total = 0
                    while true {
                        let bytes = try await server.read(upTo: 4 << 10)
                        if bytes.isEmpty { return total }
                        total += bytes.count
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
                try await Task.sleep(for: .milliseconds(50))
                // Before the fix each waited until the streaming writer stopped: for ever.
                try await awaitWithin(.seconds(10), loop.spawn { try await client.flush() })
                try await awaitWithin(.seconds(10), loop.spawn { try await client.shutdown() })
                let (chunks, error) = try await awaitWithin(.seconds(20), streaming)
                #expect(chunks > 0)
                #expect(error?.code == .closed, "\(String(describing: error))")
                #expect(try await awaitWithin(.seconds(20), reader) >= chunks * (64 << 10))
            }
        }

        @Test("await stream.flush() waits for the bytes a timed-out write left queued, until the peer reads them (it called the future builder of the same name, built and dropped: it returned at once)")
        func asyncFlushWaitsForQueuedBytes() async throws {
            try await withConnectedPair { loop, _, client, server in
                try await awaitWithin(.seconds(20), loop.spawn {
                    try client.setBufferLimits(unread: 1 << 20, queued: 16 << 20)
                    // More than loopback's socket buffers hold, the peer not reading.
                    _ = try await value(of: timeoutFuture(.milliseconds(100), client.writeAll([UInt8](repeating: 1, count: 8 << 20))))
                })
                let flushed = AtomicCounter()
                let flusher = loop.spawn {
                    try await client.flush()
                    flushed.increment()
                }
                try await Task.sleep(for: .milliseconds(200))
                #expect(flushed.value == 0, "flush returned with bytes still queued, the peer reading none")
                let reader = loop.spawn { () async throws -> Int in
                    var total = 0
                    while true {
                        let bytes = try await server.read(upTo: 64 << 10)
                        if bytes.isEmpty { return total }
                        total += bytes.count
                    }
                }
                try await awaitWithin(.seconds(20), flusher)
                #expect(flushed.value == 1)
                try await awaitWithin(.seconds(20), loop.spawn { try await client.shutdown() })
                #expect(try await awaitWithin(.seconds(20), reader) > 0)
            }
        }

        @Test("a stream polled 1,000 times with a new waker each time keeps 256 of them: each older one is woken as it is evicted, and the data wakes the rest")
        func wakersPerStreamStayBounded() async throws {
            let wakes = Shared(0)
            try await withConnectedPair { loop, _, client, server in
                let pending = try await awaitWithin(.seconds(20), loop.spawn { () async -> Int in
                    var pending = 0
                    for index in 0..<1000 {
                        var context = Context(waker: Waker { wakes.update { $0 += 1 } })
                        if case .pending = pollOneByte(of: server, &context) { pending += 1 }
                        // A turn on the loop takes at most Budget.perPoll reads;
                        // past it a read wakes its waker at once and yields.
                        if index % 100 == 99 { await Task.yield() }
                    }
                    return pending
                })
                #expect(pending == 1000)
                #expect(wakes.value == 1000 - 256)
                try await awaitWithin(.seconds(20), loop.spawn { try await client.write([1]) })
                try await waitUntil { wakes.value >= 1000 }
                #expect(wakes.value == 1000)
            }
        }

        @Test("300 async reads of a stream, each cancelled while it waits, and 300 Weft tasks that polled it once do not push a waiting poller out: the list forgets a waker once its await is over or its task completed")
        func cancelledReadsAreForgotten() async throws {
            let wakes = Shared(0)
            try await withConnectedPair { loop, _, client, server in
                let cancelled = try await awaitWithin(.seconds(30), loop.spawn { () async -> Int in
                    var context = Context(waker: Waker { wakes.update { $0 += 1 } })
                    _ = pollOneByte(of: server, &context)
                    var cancelled = 0
                    for _ in 0..<300 {
                        let reader = Task(executorPreference: loop.taskExecutor) { try await server.read(upTo: 1) }
                        reader.cancel()
                        if case .failure(let error) = await reader.result, error is CancellationError { cancelled += 1 }
                    }
                    // And 300 Weft tasks that register their own waker, then complete.
                    for _ in 0..<300 {
                        let polledOnce = Weft.spawn(pollFn { (context: inout Context) -> Poll<Void> in
                            _ = pollOneByte(of: server, &context)
                            return .ready(())
                        })
                        _ = try? await value(of: polledOnce)
                    }
                    return cancelled
                })
                #expect(cancelled == 300)
                #expect(wakes.value == 0, "the waiting poller was woken before any data came")
                try await awaitWithin(.seconds(20), loop.spawn { try await client.write([1]) })
                try await waitUntil { wakes.value > 0 }
                #expect(wakes.value == 1)
            }
        }
    }
}

/// Polls a one-byte read of `stream` once, with `context`'s waker (on the
/// stream's loop): pending registers the waker.
private func pollOneByte(of stream: TCPStream, _ context: inout Context) -> Poll<Result<Int, WeftError>> {
    var byte: UInt8 = 0
    return withUnsafeMutableBytes(of: &byte) { stream.pollRead(&context, into: $0) }
}
