/// A source of bytes read by polling: the async book's `AsyncRead`.
///
/// `pollRead` copies available bytes into `buffer` (which only has to be valid
/// for the duration of the call) and returns how many; `0` means end of stream
/// (or an empty `buffer`). With nothing available it returns `.pending` after
/// arranging a wake of `context.waker`.
public protocol AsyncRead {
    mutating func pollRead(
        _ context: inout Context, into buffer: UnsafeMutableRawBufferPointer
    ) -> Poll<Result<Int, WeftError>>
}

/// A source that exposes its internal buffer, so bytes can be used in place
/// (Tokio's `AsyncBufRead`): `copy(from:to:)` uses it to avoid a copy.
public protocol AsyncBufRead: AsyncRead {
    /// The buffered bytes (empty at end of stream), valid until the next call on
    /// the stream. Fills the buffer if it is empty.
    mutating func pollFillBuffer(_ context: inout Context) -> Poll<Result<UnsafeRawBufferPointer, WeftError>>
    /// Marks the first `count` buffered bytes as used.
    mutating func consume(_ count: Int)
}

/// A sink of bytes written by polling: the async book's `AsyncWrite`.
public protocol AsyncWrite {
    /// Writes some of `bytes` (which only has to be valid for the duration of the
    /// call), returning how many were accepted; `.pending` when the sink is full.
    /// Accepting none of non-empty `bytes` is an error to the futures that
    /// write all (`writeAll`, `copy`), as Rust's `WriteZero` is: asked again
    /// the sink would answer the same, and they would spin.
    mutating func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>>
    /// Ready once everything accepted so far has been handed to the OS.
    mutating func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>>
    /// A mark of everything accepted so far, for ``pollFlush(_:through:)``.
    var flushMark: Int { get }
    /// Ready once everything accepted before `mark` (a ``flushMark`` read
    /// after it) has been handed to the OS, whatever was accepted since: what
    /// a write (``WriteAll``) waits for, so that another task that keeps
    /// writing to the same sink cannot keep it waiting. The default, for a
    /// sink that does not count, flushes everything (``pollFlush(_:)``).
    mutating func pollFlush(_ context: inout Context, through mark: Int) -> Poll<Result<Void, WeftError>>
    /// Flushes, then closes the write direction (the peer reads end of stream).
    mutating func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>>
}

extension AsyncWrite {
    /// No mark: a sink that does not count what it accepted.
    @inlinable
    public var flushMark: Int { 0 }

    /// Flushes everything: a sink that does not count what it accepted.
    @inlinable
    public mutating func pollFlush(_ context: inout Context, through mark: Int) -> Poll<Result<Void, WeftError>> {
        pollFlush(&context)
    }
}
