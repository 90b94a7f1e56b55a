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

    /// A sink that others keep writing to: a full flush never ends, while a
    /// flush through a mark is ready at once. Or one that accepts nothing.
    final class SharedSink: AsyncWrite {
        let acceptsNothing: Bool
        var written: [UInt8] = []
        var fullFlushes = 0
        var writes = 0

        init(acceptsNothing: Bool = false) { self.acceptsNothing = acceptsNothing }

        func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
            writes += 1
            if acceptsNothing { return .ready(.success(0)) }
            written.append(contentsOf: bytes)
            return .ready(.success(bytes.count))
        }

        var flushMark: Int { written.count }

        func pollFlush(_ context: inout Context, through mark: Int) -> Poll<Result<Void, WeftError>> {
            .ready(.success(()))
        }

        func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
            fullFlushes += 1
            return .pending  // another task's bytes are always queued
        }

        func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> { .pending }
    }

    /// The bytes of `bytes` as a buffered reader, a block at a time.
    final class MemoryBufReader: AsyncBufRead {
        var bytes: [UInt8]
        var start = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        func pollFillBuffer(_ context: inout Context) -> Poll<Result<UnsafeRawBufferPointer, WeftError>> {
            let count = min(7, bytes.count - start)
            return .ready(.success(bytes.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[start..<start + count]) }))
        }

        func consume(_ count: Int) { start += count }

        func pollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
            let count = min(buffer.count, bytes.count - start)
            bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[start..<start + count])) }
            start += count
            return .ready(.success(count))
        }
    }

    @Test("copy, plain or buffered, waits only for its own bytes to be flushed, not for what other writers keep queuing in the same sink (it waited until they stopped)")
    func copyFlushesThroughItsOwnBytes() throws {
        let runtime = try Runtime()
        let plainSink = SharedSink()
        let plain = try runtime.block(on: timeoutFuture(.seconds(5), copy(from: ScriptedReader([Self.message]), to: plainSink)))
        #expect(try plain.get().get() == Self.message.count, "\(plain)")
        #expect(plainSink.fullFlushes == 0)
        let bufferedSink = SharedSink()
        let buffered = try runtime.block(on: timeoutFuture(.seconds(5), copy(from: MemoryBufReader(Self.message), to: bufferedSink)))
        #expect(try buffered.get().get() == Self.message.count, "\(buffered)")
        #expect(bufferedSink.written == Self.message)
    }

    @Test("writeAll and copy fail with an error when the writer accepts none of the bytes without waiting, instead of asking it again for ever (Rust's WriteZero)")
    func writerAcceptingNothing() throws {
        let runtime = try Runtime()
        for attempt in ["writeAll", "copy", "buffered copy"] {
            let sink = SharedSink(acceptsNothing: true)
            let result: Result<Void, WeftError> = switch attempt {
            case "writeAll": try runtime.block(on: sink.writeAll([1, 2, 3]))
            case "copy": try runtime.block(on: copy(from: ScriptedReader([[1, 2, 3]]), to: sink)).map { _ in }
            default: try runtime.block(on: copy(from: MemoryBufReader([1, 2, 3]), to: sink)).map { _ in }
            }
            #expect(result.failure?.detail == "the writer accepted none of the bytes", "\(attempt): \(result)")
            #expect(sink.writes == 1, "\(attempt)")
        }
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
