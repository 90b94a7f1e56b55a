/// The reading half of a stream split in two (Tokio's `ReadHalf`): it reads
/// from the whole stream (a class: both halves share it), which stays open
/// while either half exists. Made by
/// ``TCPStream/split()`` and ``UnixStream/split()``.
public struct ReadHalf<Stream: AsyncBufRead & AnyObject>: AsyncBufRead {
    /// The whole stream.
    public let stream: Stream

    /// The reading half of `stream`.
    @inlinable
    public init(stream: Stream) { self.stream = stream }

    @inlinable
    public func pollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        var stream = self.stream  // a reference: the copy is the same stream
        return stream.pollRead(&context, into: buffer)
    }

    @inlinable
    public func pollFillBuffer(_ context: inout Context) -> Poll<Result<UnsafeRawBufferPointer, WeftError>> {
        var stream = self.stream  // a reference: the copy is the same stream
        return stream.pollFillBuffer(&context)
    }

    @inlinable
    public func consume(_ count: Int) {
        var stream = self.stream  // a reference: the copy is the same stream
        stream.consume(count)
    }
}

/// The writing half of a stream split in two (Tokio's `WriteHalf`). See
/// ``ReadHalf``.
public struct WriteHalf<Stream: AsyncWrite & AnyObject>: AsyncWrite {
    /// The whole stream.
    public let stream: Stream

    /// The writing half of `stream`.
    @inlinable
    public init(stream: Stream) { self.stream = stream }

    @inlinable
    public func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        var stream = self.stream  // a reference: the copy is the same stream
        return stream.pollWrite(&context, bytes)
    }

    @inlinable
    public func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        var stream = self.stream  // a reference: the copy is the same stream
        return stream.pollFlush(&context)
    }

    @inlinable
    public var flushMark: Int { stream.flushMark }

    @inlinable
    public func pollFlush(_ context: inout Context, through mark: Int) -> Poll<Result<Void, WeftError>> {
        var stream = self.stream  // a reference: the copy is the same stream
        return stream.pollFlush(&context, through: mark)
    }

    @inlinable
    public func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        var stream = self.stream  // a reference: the copy is the same stream
        return stream.pollShutdown(&context)
    }
}

// Each half is one reference to its stream, so it may go to another task (or
// thread) as the stream may: the halves of one stream, read by one task and
// written by another, Tokio's split pattern.
extension ReadHalf: Sendable where Stream: Sendable {}
extension WriteHalf: Sendable where Stream: Sendable {}
