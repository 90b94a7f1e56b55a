import CLibUV

/// Reads exactly `count` bytes. See ``AsyncRead/readExact(_:)``.
///
/// The buffer grows with the bytes that arrive (doubling, from 64 KiB), so a
/// huge `count` costs memory only for what the peer actually sends and fails
/// with an end-of-stream error when it stops short, rather than allocating
/// `count` bytes up front.
///
/// **Cancellation:** not cancel-safe: bytes already read are lost if dropped.
public struct ReadExact<Reader: AsyncRead>: Future {
    @usableFromInline var reader: Reader
    @usableFromInline var bytes: [UInt8] = []
    @usableFromInline var filled = 0

    @usableFromInline let count: Int

    /// The first allocation; later ones double it, up to `count`.
    @usableFromInline static var initialCapacity: Int { 64 * 1024 }

    @inlinable
    init(reader: Reader, count: Int) {
        self.reader = reader
        self.count = count
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<[UInt8], WeftError>> {
        guard count >= 0 else {
            return .ready(.failure(WeftError(.invalidArgument, operation: "readExact(\(count))",
                                             detail: "the length must not be negative")))
        }
        while filled < count {
            if filled == bytes.count {
                let grown = min(count, max(Self.initialCapacity, bytes.count * 2))
                bytes.append(contentsOf: repeatElement(0, count: grown - bytes.count))
            }
            let filledSoFar = filled
            let result = bytes.withUnsafeMutableBytes { buffer in
                reader.pollRead(&context, into: UnsafeMutableRawBufferPointer(rebasing: buffer[filledSoFar...]))
            }
            switch result {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success(0)):
                return .ready(.failure(WeftError(.libuv(code: UV_EOF.rawValue), operation: "readExact",
                                                 detail: "end of stream after \(filled) of \(count) bytes")))
            case .ready(.success(let count)): filled += count
            }
        }
        return .ready(.success(bytes))
    }
}

/// Reads until end of stream. See ``AsyncRead/readToEnd(limit:)``.
///
/// **Cancellation:** not cancel-safe: bytes already read are lost if dropped.
public struct ReadToEnd<Reader: AsyncRead>: Future {
    @usableFromInline var reader: Reader
    @usableFromInline var bytes: [UInt8] = []
    @usableFromInline let limit: Int

    @inlinable
    init(reader: Reader, limit: Int) {
        self.reader = reader
        self.limit = limit
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<[UInt8], WeftError>> {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let result = chunk.withUnsafeMutableBytes { reader.pollRead(&context, into: $0) }
            switch result {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success(0)): return .ready(.success(bytes))
            case .ready(.success(let count)):
                bytes.append(contentsOf: chunk[..<count])
                if bytes.count > limit {
                    return .ready(.failure(WeftError(.invalidArgument, operation: "readToEnd",
                                                     detail: "more than \(limit) bytes")))
                }
            }
        }
    }
}

/// Writes every byte, then waits until they have been handed to the OS (not
/// for what other writes accepted after them: ``AsyncWrite/pollFlush(_:through:)``).
/// See ``AsyncWrite/writeAll(_:)-([UInt8])``.
///
/// **Cancellation:** not cancel-safe: a dropped write may have sent a prefix.
public struct WriteAll<Writer: AsyncWrite>: Future {
    @usableFromInline var writer: Writer
    @usableFromInline let bytes: ArraySlice<UInt8>
    @usableFromInline var written = 0
    /// The writer's ``AsyncWrite/flushMark`` once every byte was accepted.
    @usableFromInline var mark: Int?

    @inlinable
    init(writer: Writer, bytes: ArraySlice<UInt8>) {
        self.writer = writer
        self.bytes = bytes
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        while written < bytes.count {
            let start = written
            let result = bytes.withUnsafeBytes { buffer in
                writer.pollWrite(&context, UnsafeRawBufferPointer(rebasing: buffer[start...]))
            }
            switch result {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success(0)): return .ready(.failure(writeZeroError()))
            case .ready(.success(let count)): written += count
            }
        }
        if mark == nil { mark = writer.flushMark }
        return writer.pollFlush(&context, through: mark!)
    }
}

/// Flushes a writer: ready once what was written before its first poll has
/// reached the OS (a task writing on beside it cannot put it off). See
/// ``AsyncWrite/flushFuture()``.
public struct Flush<Writer: AsyncWrite>: Future {
    @usableFromInline var writer: Writer
    /// The writer's ``AsyncWrite/flushMark`` at the first poll.
    @usableFromInline var mark: Int?

    @inlinable
    init(writer: Writer) { self.writer = writer }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        if mark == nil { mark = writer.flushMark }
        return writer.pollFlush(&context, through: mark!).map { $0.mapError { $0.asFlushError() } }
    }
}

/// Shuts a writer's direction down. See ``AsyncWrite/shutdownFuture()``.
public struct Shutdown<Writer: AsyncWrite>: Future {
    @usableFromInline var writer: Writer

    @inlinable
    init(writer: Writer) { self.writer = writer }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        writer.pollShutdown(&context)
    }
}

/// Copies a reader into a writer until end of stream through a buffer of its
/// own, then flushes; yields the number of bytes copied. See ``copy(from:to:)->Copy<Reader,Writer>``.
///
/// **Cancellation:** not cancel-safe: bytes read but not yet written are lost.
public struct Copy<Reader: AsyncRead, Writer: AsyncWrite>: Future {
    @usableFromInline var reader: Reader
    @usableFromInline var writer: Writer
    @usableFromInline var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    @usableFromInline var bufferStart = 0
    @usableFromInline var bufferEnd = 0
    @usableFromInline var copied = 0
    @usableFromInline var reachedEnd = false
    /// The writer's ``AsyncWrite/flushMark`` once the last byte was accepted.
    @usableFromInline var mark: Int?

    @inlinable
    init(reader: Reader, writer: Writer) {
        self.reader = reader
        self.writer = writer
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Int, WeftError>> {
        while !reachedEnd {
            if bufferStart == bufferEnd {
                let result = buffer.withUnsafeMutableBytes { reader.pollRead(&context, into: $0) }
                switch result {
                case .pending: return .pending
                case .ready(.failure(let error)): return .ready(.failure(error))
                case .ready(.success(0)): reachedEnd = true; continue
                case .ready(.success(let count)): (bufferStart, bufferEnd) = (0, count)
                }
            }
            let (start, end) = (bufferStart, bufferEnd)
            let result = buffer.withUnsafeBytes {
                writer.pollWrite(&context, UnsafeRawBufferPointer(rebasing: $0[start..<end]))
            }
            switch result {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success(0)): return .ready(.failure(writeZeroError()))
            case .ready(.success(let count)):
                bufferStart += count
                copied += count
            }
        }
        if mark == nil { mark = writer.flushMark }
        return writer.pollFlush(&context, through: mark!).map { result in result.map { copied } }
    }
}

/// Copies a buffered reader into a writer straight from the reader's buffer (no
/// copy in between) until end of stream, then flushes; yields the number of
/// bytes copied. See ``copy(from:to:)->BufferedCopy<Reader,Writer>``.
///
/// **Cancellation:** cancel-safe on the reading side: bytes leave the reader's
/// buffer only once the writer accepted them.
public struct BufferedCopy<Reader: AsyncBufRead, Writer: AsyncWrite>: Future {
    @usableFromInline var reader: Reader
    @usableFromInline var writer: Writer
    @usableFromInline var copied = 0
    @usableFromInline var reachedEnd = false
    /// The writer's ``AsyncWrite/flushMark`` once the last byte was accepted.
    @usableFromInline var mark: Int?

    @inlinable
    init(reader: Reader, writer: Writer) {
        self.reader = reader
        self.writer = writer
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Int, WeftError>> {
        while !reachedEnd {
            let filled: UnsafeRawBufferPointer
            switch reader.pollFillBuffer(&context) {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success(let bytes)): filled = bytes
            }
            if filled.isEmpty { reachedEnd = true; break }
            switch writer.pollWrite(&context, filled) {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success(0)): return .ready(.failure(writeZeroError()))
            case .ready(.success(let count)):
                reader.consume(count)
                copied += count
            }
        }
        if mark == nil { mark = writer.flushMark }
        return writer.pollFlush(&context, through: mark!).map { result in result.map { copied } }
    }
}

/// A writer accepted none of a non-empty write without waiting: asked again
/// it would do the same, for ever (Rust's `WriteZero`).
@usableFromInline
func writeZeroError() -> WeftError {
    WeftError(.libuv(code: UV_EIO.rawValue), operation: "write", detail: "the writer accepted none of the bytes")
}

extension AsyncRead {
    /// A future of exactly `count` bytes; fails if the stream ends first.
    ///
    /// The future works on its own copy of the reader: for a class such as
    /// ``TCPStream`` that is the stream itself.
    @inlinable
    public func readExact(_ count: Int) -> ReadExact<Self> {
        ReadExact(reader: self, count: count)
    }

    /// A future of every byte until end of stream (failing past `limit` bytes).
    @inlinable
    public func readToEnd(limit: Int = 64 * 1024 * 1024) -> ReadToEnd<Self> {
        ReadToEnd(reader: self, limit: limit)
    }
}

extension AsyncWrite {
    /// A future that writes all of `bytes`, then waits until they have been
    /// handed to the OS (``WriteAll``).
    @inlinable
    public func writeAll(_ bytes: [UInt8]) -> WriteAll<Self> {
        WriteAll(writer: self, bytes: bytes[...])
    }

    /// A future that writes all of `bytes` (a slice, e.g. the filled prefix of
    /// a read buffer, without copying it first), then waits until they have
    /// been handed to the OS.
    @inlinable
    public func writeAll(_ bytes: ArraySlice<UInt8>) -> WriteAll<Self> {
        WriteAll(writer: self, bytes: bytes)
    }

    /// A future that completes when everything written has reached the OS.
    /// (The async form, where a writer has one, is `flush()`: a builder of the
    /// same name was what `try await stream.flush()` called, built and
    /// dropped, flushing nothing.)
    @inlinable
    public func flushFuture() -> Flush<Self> {
        Flush(writer: self)
    }

    /// A future that flushes, then closes the write direction.
    @inlinable
    public func shutdownFuture() -> Shutdown<Self> {
        Shutdown(writer: self)
    }
}

/// A future that copies `reader` into `writer` until end of stream, then
/// flushes; yields the number of bytes copied.
@inlinable
public func copy<Reader: AsyncRead, Writer: AsyncWrite>(from reader: Reader, to writer: Writer) -> Copy<Reader, Writer> {
    Copy(reader: reader, writer: writer)
}

/// A future that copies a buffered `reader` into `writer` without an
/// intermediate buffer until end of stream, then flushes.
@inlinable
public func copy<Reader: AsyncBufRead, Writer: AsyncWrite>(
    from reader: Reader, to writer: Writer
) -> BufferedCopy<Reader, Writer> {
    BufferedCopy(reader: reader, writer: writer)
}
