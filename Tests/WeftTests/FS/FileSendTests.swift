import Foundation
import Testing
import Weft

@Suite("Files: sendfile to a stream")
struct FileSendTests {
    @Test("sendfile from a file opened on another loop than the stream's is refused with invalidArgument saying so, and sends nothing (it failed with wrongThread)")
    func fromAnotherLoop() async throws {
        try await FileTest.withTemporaryDirectory { directory in
            let fileLoop = try LoopThread()
            defer { fileLoop.shutdown() }
            let streamLoop = try LoopThread()
            defer { streamLoop.shutdown() }
            let path = directory + "/data"
            let file = try await awaitWithin(.seconds(20), fileLoop.spawn { () async throws -> File in
                try await FileSystem.writeFile(path, contents: Array("hello".utf8))
                return try await File.open(path)
            })
            let (listener, client, server) = try await awaitWithin(.seconds(20), streamLoop.spawn { try await connectedPairOnThisLoop() })
            let sent = await outcome { try await file.send(to: server, count: 5) }
            let error = sent.failure as? WeftError
            #expect(error?.kind == .invalidArgument && error?.detail.contains("different loops") == true, "\(sent)")
            server.close()
            let received = try await awaitWithin(.seconds(20), streamLoop.spawn { try await client.read() })
            #expect(received.isEmpty, "bytes arrived: \(received)")
            _ = listener
        }
    }

    @Test("sendfile to a TCP stream delivers the range in order after bytes written before it, also when the socket fills")
    func toTCP() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let bytes = FileTest.pattern(6 << 20, seed: 5)
            let (file, listener, server, client) = try Self.fileAndConnection(bytes, in: directory, on: runtime)
            // Small buffers on both ends, so the socket fills and sendfile says EAGAIN.
            var small = SocketOptions()
            small.sendBufferSize = 16 * 1024
            small.receiveBufferSize = 16 * 1024
            try server.setOptions(small)
            try client.setOptions(small)
            let header = Array("header\n".utf8)
            // The client starts reading only after a while, so the socket's buffer fills.
            let (sent, received) = try runtime.block(on: timeoutFuture(.seconds(30), join(
                server.writeAll(header).onSuccess {
                    file.sendFuture(to: server, offset: 100, count: bytes.count)  // past the end: fewer
                }.onSuccess { count in server.shutdownFuture().map { $0.map { count } } },
                sleepFuture(for: .milliseconds(50)).then { client.readToEnd(limit: 7 << 20) }
            ))).get()
            #expect(try sent.get() == bytes.count - 100)
            #expect(try received.get() == header + Array(bytes[100...]))
            file.close()
            client.close()
            server.close()
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    /// `bytes` written to a file in `directory`, opened, and a connected pair
    /// of loopback TCP streams.
    static func fileAndConnection(_ bytes: [UInt8], in directory: String, on runtime: Runtime) throws
        -> (file: File, listener: TCPListener, server: TCPStream, client: TCPStream) {
        try runtime.block(on: FileSystem.writeFileFuture(directory + "/data", contents: bytes)).get()
        let file = try runtime.block(on: File.openFuture(directory + "/data")).get()
        let listener = try NetTest.bindLoopback(runtime)
        let (accepted, connected) = try runtime.block(on: timeoutFuture(.seconds(10), join(
            listener.acceptFuture(), TCPStream.connectFuture(to: try listener.localAddress)
        ))).get()
        return (file, listener, try accepted.get(), try connected.get())
    }

    // Before the fix that came with this test, the write was taken at once,
    // beside the pool thread's sendfile, which could still be putting the
    // file's bytes on the socket (the peer then read the write inside them);
    // nor did a flush or a shutdown wait for them.
    @Test("a sendfile dropped once started: until its pool thread's call returns, the stream's next write, flush and shutdown wait (they were taken at once, beside it), and the write lands after every byte of the range it sent")
    func droppedSendfileOrdersTheNextWrite() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let bytes = FileTest.pattern(16 << 20, seed: 6)
            try runtime.block(on: FileSystem.writeFileFuture(directory + "/data", contents: bytes)).get()
            let file = try runtime.block(on: File.openFuture(directory + "/data")).get()
            let listener = try NetTest.bindLoopback(runtime)
            // A peer on a thread of its own that reads all along, whether or
            // not the runtime runs.
            let peer = try RawSocket.connected(to: try listener.localAddress.port)
            defer { peer.close() }
            peer.setReceiveTimeout(seconds: 60)
            let server = try runtime.block(on: timeoutFuture(.seconds(10), listener.acceptFuture())).get().get()
            let received = Shared<[UInt8]>([])
            let reader = ForeignThread {
                let capacity = bytes.count + 4096
                received.value = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
                    while initialized < capacity {
                        let count = recv(peer.fd, buffer.baseAddress! + initialized, capacity - initialized, 0)
                        if count <= 0 { break }
                        initialized += count
                    }
                }
            }
            let end = Array("END".utf8)
            // In one poll on the loop: the send starts its sendfile and is
            // dropped; the loop has not run since, so the call's end has not
            // been heard of, whether or not the pool thread is still in it.
            let (write, flush, shutdown) = try runtime.block(on: pollFn { context -> Poll<(Bool, Bool, Bool)> in
                var send = file.sendFuture(to: server, count: bytes.count)
                guard case .pending = send.poll(&context) else { return .ready((true, true, true)) }
                _ = consume send
                var write = server.writeAll(end)
                var flush = server.flushFuture()
                var shutdown = server.shutdownFuture()
                return .ready((write.poll(&context).isReady, flush.poll(&context).isReady, shutdown.poll(&context).isReady))
            })
            #expect(!write && !flush && !shutdown, "taken beside the sendfile: write \(write), flush \(flush), shutdown \(shutdown)")
            let wrote = try runtime.block(on: timeoutFuture(.seconds(30), server.writeAll(end).then { _ in server.shutdownFuture() }))
            #expect(throws: Never.self) { try wrote.get().get() }
            #expect(reader.join(within: .seconds(60)), "the peer did not read to the end")
            let data = received.value
            #expect(data.count >= end.count && data.count - end.count <= bytes.count, "a prefix of the range, then the write: \(data.count) bytes")
            #expect(Array(data.suffix(end.count)) == end, "the write did not come last")
            #expect(data.dropLast(end.count).elementsEqual(bytes.prefix(data.count - end.count)), "the write landed inside the file's bytes")
            server.close()
            file.close()
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("sendfile from a file opened only to write fails with invalidArgument saying so (EBADF read as .closed, the file and the stream open)")
    func fromAFileOpenedToWrite() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let (readable, listener, server, client) = try Self.fileAndConnection(Array("hello".utf8), in: directory, on: runtime)
            readable.close()
            let file = try runtime.block(on: File.openFuture(directory + "/data", options: [.write])).get()
            let error = try #require(try runtime.block(on: file.sendFuture(to: server, count: 5)).failure)
            #expect(error.code == .invalidArgument && error.description.contains("EBADF"), "\(error)")
            for handle in [server, client] { handle.close() }
            file.close()
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("sendfile with count Int.max from an offset sends to the end of the file (offset plus count overflowed the kernel's check: EINVAL)")
    func toTheEndFromAnOffset() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let bytes = FileTest.pattern(100_000, seed: 6)
            let (file, listener, server, client) = try Self.fileAndConnection(bytes, in: directory, on: runtime)
            let (sent, received) = try runtime.block(on: timeoutFuture(.seconds(30), join(
                file.sendFuture(to: server, offset: 1, count: .max)
                    .onSuccess { count in server.shutdownFuture().map { $0.map { count } } },
                client.readToEnd(limit: 1 << 20)
            ))).get()
            #expect(try sent.get() == bytes.count - 1)
            #expect(try received.get() == Array(bytes[1...]))
            file.close()
            client.close()
            server.close()
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("sendfile polled again after it completed fails with .invalidArgument and sends nothing more (it went on past its range: 0123 then 89 of 0123456789)")
    func polledAgain() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let (file, listener, server, client) = try Self.fileAndConnection(Array("0123456789".utf8), in: directory, on: runtime)
            var send = file.sendFuture(to: server, count: 4)
            #expect(try runtime.block(on: pollFn { send.poll(&$0) }).get() == 4)
            let again = try runtime.block(on: timeoutFuture(.seconds(10), pollFn { send.poll(&$0) })).get()
            #expect(again.failure?.kind == .invalidArgument, "\(again)")
            try runtime.block(on: server.shutdownFuture()).get()
            let received = try runtime.block(on: timeoutFuture(.seconds(10), client.readToEnd())).get().get()
            #expect(String(decoding: received, as: UTF8.self) == "0123")
            file.close()
            client.close()
            server.close()
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }
}
