import Glibc
import Synchronization
import Testing
import Weft

/// The async `write` of a stream, on its own loop, first does what its
/// future's first poll would, with no future and no await
/// (docs/ARCHITECTURE.md, "The async fast paths"); the future finishes what
/// that step cannot. These check that the outcomes are still the future's:
/// the write returns only once every byte reached the OS, and the kernel's
/// errors and the closed cases surface as before.
@Suite("Stream async write")
struct StreamAsyncWriteTests {
    /// The error an async write of a few bytes to `stream` threw; nil if it
    /// returned (or threw something other than a `WeftError`).
    static func writeError(_ stream: TCPStream) async -> WeftError? {
        do {
            try await stream.write(NetTest.bytes("too late"))
            return nil
        } catch {
            return error as? WeftError
        }
    }

    @Test("async writes to a peer that reads only later (256 of 32 KiB, then one of 4 MiB) each return with nothing left queued, and the stream, closed right after them, delivers every byte in order")
    func writesReturnOnceWritten() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let (listener, address) = try await NetTest.bindLoopback(on: loop)
        let chunk = 32 << 10
        let count = 12 << 20
        // Made before the peer connects: under ThreadSanitizer a slow fill
        // outlasted the peer's receive timeout.
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = UInt8(index % 251) }
            initialized = count
        }
        let received = Mutex<(count: Int, inOrder: Bool)>((-1, false))
        let peer = NetTest.PeerThread {
            guard let raw = try? RawSocket.connected(to: address.port) else { return }
            defer { raw.close() }
            raw.setReceiveTimeout(seconds: 30)
            usleep(200_000)  // the socket buffers fill: later writes must queue
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            var total = 0
            var inOrder = true
            while true {
                let got = buffer.withUnsafeMutableBytes { recv(raw.fd, $0.baseAddress, $0.count, 0) }
                if got <= 0 { break }
                for index in 0..<got where buffer[index] != UInt8((total + index) % 251) { inOrder = false }
                total += got
            }
            received.withLock { $0 = (total, inOrder) }
        }
        let returnedWithQueued = try await awaitWithin(.seconds(60), loop.spawn { () async throws -> Int in
            let stream = try await listener.accept()
            defer { stream.close() }  // what was still queued would be cancelled here
            var returnedWithQueued = 0
            func write(_ range: Range<Int>) async throws {
                try await stream.write(bytes[range])
                var context = Context(waker: .noop)
                if case .pending = stream.pollFlush(&context) { returnedWithQueued += 1 }
            }
            for start in stride(from: 0, to: 8 << 20, by: chunk) {
                try await write(start..<start + chunk)
            }
            try await write((8 << 20)..<count)
            return returnedWithQueued
        })
        #expect(returnedWithQueued == 0)
        #expect(peer.join(within: 60))
        let (total, inOrder) = received.withLock { $0 }
        #expect(total == count)
        #expect(inOrder)
        listener.close()
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }

    @Test("an async write to a peer that reset fails with the kernel's error (EPIPE or ECONNRESET) naming write, and so does the next one")
    func writeAfterReset() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let (listener, address) = try await NetTest.bindLoopback(on: loop)
        let peer = NetTest.PeerThread {
            guard let raw = try? RawSocket.connected(to: address.port) else { return }
            raw.resetAndClose()
        }
        let (first, second) = try await awaitWithin(.seconds(30), loop.spawn { () async throws -> (WeftError?, WeftError?) in
            let stream = try await listener.accept()
            defer { stream.close() }
            // The read sees the reset first, so the writes meet a reset socket.
            _ = try? await stream.read()
            return (await Self.writeError(stream), await Self.writeError(stream))
        })
        #expect(peer.join())
        let error = try #require(first)
        #expect(["EPIPE", "ECONNRESET"].contains(error.name), "got \(error)")
        #expect(error.operation == "write")
        #expect(second?.name == error.name)
        listener.close()
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }

    @Test("an async write after shutdown, and one after close, fail with .closed naming write")
    func writeAfterShutdownAndClose() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let (listener, address) = try await NetTest.bindLoopback(on: loop)
        let (afterShutdown, afterClose) = try await awaitWithin(.seconds(30), loop.spawn { () async throws -> (WeftError?, WeftError?) in
            let client = try await TCPStream.connect(to: address)
            let server = try await listener.accept()
            defer { server.close() }
            try await client.shutdown()
            let afterShutdown = await Self.writeError(client)
            client.close()
            return (afterShutdown, await Self.writeError(client))
        })
        #expect(afterShutdown?.kind == .closed)
        #expect(afterShutdown?.operation == "write")
        #expect(afterClose?.kind == .closed)
        #expect(afterClose?.operation == "write")
        listener.close()
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }
}
