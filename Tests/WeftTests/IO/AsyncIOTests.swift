import Testing
import Weft

/// `readExact`, `readToEnd`, `writeAll` and `copy` over scripted in-memory
/// streams that deliver bytes in small pieces and go pending in between.
@Suite("AsyncRead and AsyncWrite combinators")
struct AsyncIOTests {
    /// Serves `chunks` one per read, each after one pending poll (which wakes
    /// the task at once), then end of stream; or `failure` instead of the end.
    final class ScriptedReader: AsyncRead {
        var chunks: [[UInt8]]
        var failure: WeftError?
        var wentPending = false
        var pendingCount = 0

        init(_ chunks: [[UInt8]], failure: WeftError? = nil) {
            self.chunks = chunks
            self.failure = failure
        }

        func pollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
            if !wentPending {
                wentPending = true
                pendingCount += 1
                context.waker.wake()
                return .pending
            }
            wentPending = false
            guard !chunks.isEmpty else {
                if let failure { return .ready(.failure(failure)) }
                return .ready(.success(0))
            }
            let count = min(buffer.count, chunks[0].count)
            chunks[0].withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            chunks[0].removeFirst(count)
            if chunks[0].isEmpty { chunks.removeFirst() }
            return .ready(.success(count))
        }
    }

    /// Accepts at most `limit` bytes per write and goes pending every other write.
    final class TricklingWriter: AsyncWrite {
        let limit: Int
        var written: [UInt8] = []
        var flushes = 0
        var shutDown = false
        var wentPending = false

        init(limit: Int) { self.limit = limit }

        func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
            if !wentPending {
                wentPending = true
                context.waker.wake()
                return .pending
            }
            wentPending = false
            let count = min(limit, bytes.count)
            written.append(contentsOf: bytes[..<count])
            return .ready(.success(count))
        }

        func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
            flushes += 1
            return .ready(.success(()))
        }

        func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
            shutDown = true
            return .ready(.success(()))
        }
    }

    static let message = Array("the quick brown fox jumps over the lazy dog".utf8)

    static func pieces(of bytes: [UInt8], size: Int) -> [[UInt8]] {
        stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
    }

    @Test("readExact assembles exactly the bytes asked for across many small reads, leaving the rest")
    func readExactAcrossReads() throws {
        let runtime = try Runtime()
        let reader = ScriptedReader(Self.pieces(of: Self.message, size: 3))
        let first = try runtime.block(on: reader.readExact(10)).get()
        #expect(first == Array(Self.message[..<10]))
        let rest = try runtime.block(on: reader.readToEnd()).get()
        #expect(rest == Array(Self.message[10...]))
        #expect(reader.pendingCount > 10)
    }

    @Test("readExact fails with an end-of-stream error telling how much arrived")
    func readExactShort() throws {
        let runtime = try Runtime()
        let reader = ScriptedReader([[1, 2, 3]])
        let outcome = try runtime.block(on: reader.readExact(10))
        let error = try #require(outcome.failure)
        #expect(error.name == "EOF")
        #expect(error.detail.contains("3 of 10"))
    }

    @Test("readToEnd fails with .invalidArgument past its limit")
    func readToEndLimit() throws {
        let runtime = try Runtime()
        let reader = ScriptedReader(Self.pieces(of: Self.message, size: 8))
        let outcome = try runtime.block(on: reader.readToEnd(limit: 20))
        #expect(outcome.failure?.kind == .invalidArgument)
    }

    @Test("a read error is passed on unchanged by readExact, readToEnd and copy")
    func readErrorsPropagate() throws {
        let runtime = try Runtime()
        let failure = WeftError(.libuv(code: -104), operation: "read")
        #expect(try runtime.block(on: ScriptedReader([[1]], failure: failure).readExact(4)).failure == failure)
        #expect(try runtime.block(on: ScriptedReader([[1]], failure: failure).readToEnd()).failure == failure)
        let writer = TricklingWriter(limit: 100)
        #expect(try runtime.block(on: copy(from: ScriptedReader([[1]], failure: failure), to: writer)).failure == failure)
        #expect(writer.written == [1])
    }

    @Test("writeAll writes every byte in order through a writer that takes a few bytes at a time, then flushes")
    func writeAllTrickles() throws {
        let runtime = try Runtime()
        let writer = TricklingWriter(limit: 5)
        try runtime.block(on: writer.writeAll(Self.message)).get()
        #expect(writer.written == Self.message)
        #expect(writer.flushes == 1)
        try runtime.block(on: writer.shutdownFuture()).get()
        #expect(writer.shutDown)
    }

    @Test("copy moves every byte from a reader to a writer and reports the count")
    func copyAll() throws {
        let runtime = try Runtime()
        let payload = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let reader = ScriptedReader(Self.pieces(of: payload, size: 7_000))
        let writer = TricklingWriter(limit: 4_096)
        let copied = try runtime.block(on: copy(from: reader, to: writer)).get()
        #expect(copied == payload.count)
        #expect(writer.written == payload)
        #expect(writer.flushes >= 1)
    }
}
