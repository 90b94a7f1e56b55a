import CLibUV

/// One end of a pipe on a Weft runtime: a child's standard input, output or
/// error (``ChildProcess/standardInput``), or an end of an anonymous pipe
/// (``pipeFuture()``).
///
/// It runs on the same stream machinery as ``TCPStream`` and ``UnixStream``
/// (one `StreamConnection`, over a `uv_pipe_t`), so it behaves the same way: a
/// byte stream (``AsyncRead``, ``AsyncBufRead``, ``AsyncWrite``) with the same
/// backpressure (``setBufferLimits(unread:queued:)``), the loop's buffer
/// budget, `uv_try_write` first, and half-close (``shutdown()``, which closes
/// a child's standard input so that it reads end of file). Writing to a pipe
/// whose reader is gone fails with ``WeftError/Code/brokenPipe`` (`EPIPE`),
/// or, for a child's stream, with ``WeftError/Code/connectionReset``
/// (`ECONNRESET`) when the child exited leaving bytes unread (libuv makes a
/// child's streams socket pairs, and Linux resets a socket closed with
/// bytes unread); the process does not get `SIGPIPE` (a runtime ignores it).
///
/// The stream belongs to its runtime's loop thread; the async methods run
/// there (hopping to it when called elsewhere), the poll and synchronous ones
/// fail with `.wrongThread` off it. It is closed by ``close()`` or when the
/// last reference goes away; closing wakes every pending operation with a
/// `.closed` error.
///
/// **Cancellation:** as ``TCPStream``: reads are cancel-safe; a dropped
/// `writeAll` may leave a prefix written.
///
/// `@unchecked Sendable` is sound for the reason ``TCPStream``'s is: the only
/// state, `connection`, is touched solely on the loop thread (every entry point
/// checks the thread; `close()`/`deinit` elsewhere hand the close to the loop).
public final class PipeStream: @unchecked Sendable {
    let connection: StreamConnection

    init(connection: StreamConnection) {
        self.connection = connection
    }

    deinit {
        connection.closeOnLoop()
    }

    /// A stream on `loop` for the open `descriptor`, which it now owns (closed
    /// on failure and when the stream closes, unless it is 0, 1 or 2): a pipe,
    /// socket or character device through `uv_pipe_open`
    /// (`kind` `.pipe`), or a terminal through `uv_tty_init` (`kind` `.tty`).
    /// libuv makes the descriptor non-blocking, for every process sharing it.
    /// For the standard streams of the process (to come); call it on the loop thread.
    static func adopting(_ descriptor: Int32, kind: StreamConnection.Kind, loop: EventLoop) throws(WeftError) -> PipeStream {
        if let error = loop.refusesNewHandle(operation: "open descriptor \(descriptor)") {
            if descriptor > 2 { weft_close(descriptor) }
            throw error
        }
        return PipeStream(connection: try StreamConnection.adopting(descriptor, loop: loop, kind: kind))
    }

    /// A future of a new anonymous pipe, on the runtime polling it: bytes
    /// written to `writer` are read from `reader`; when the writer is closed
    /// or shut down, the reader reads end of stream.
    ///
    /// **Cancellation:** it completes at its first poll, so there is nothing to
    /// cancel.
    public static func pipeFuture() -> OpenPipe {
        OpenPipe()
    }

    /// A future of up to `maxLength` bytes; empty at end of stream (and at
    /// once for a `maxLength` of 0). Cancel-safe.
    public func readFuture(upTo maxLength: Int = 64 * 1024) -> ReadSome {
        ReadSome(stream: self, connection: connection, maxLength: maxLength)
    }

    /// Closes the stream (on the loop thread: at once there, else as soon as
    /// the loop runs). Idempotent.
    public func close() {
        connection.closeOnLoop()
    }

    /// Whether the stream is closed, on any thread (see ``TCPStream/isClosed``).
    public var isClosed: Bool { connection.isClosedOnAnyThread }

    /// The backpressure limits, as ``TCPStream/setBufferLimits(unread:queued:)``.
    public func setBufferLimits(unread: Int, queued: Int) throws(WeftError) {
        try connection.setBufferLimits(unread: unread, queued: queued)
    }
}

extension PipeStream: AsyncBufRead, AsyncWrite {
    public func pollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        connection.checkedPollRead(&context, into: buffer)
    }

    public func pollFillBuffer(_ context: inout Context) -> Poll<Result<UnsafeRawBufferPointer, WeftError>> {
        connection.checkedPollFillBuffer(&context)
    }

    /// Marks buffered bytes as used. Call it on the loop thread, after
    /// `pollFillBuffer` (a precondition, since it cannot report an error).
    public func consume(_ count: Int) {
        connection.checkedConsume(count, by: self)
    }

    public func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        connection.checkedPollWrite(&context, bytes)
    }

    public func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        connection.checkedPollFlush(&context)
    }

    /// See ``AsyncWrite/flushMark``: on the loop thread; `Int.max` elsewhere.
    public var flushMark: Int { connection.checkedFlushMark }

    public func pollFlush(_ context: inout Context, through mark: Int) -> Poll<Result<Void, WeftError>> {
        connection.checkedPollFlush(&context, through: mark)
    }

    public func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        connection.checkedPollShutdown(&context)
    }
}

/// Opens an anonymous pipe. See ``PipeStream/pipeFuture()``.
///
/// **Cancellation:** it completes at its first poll (making a pipe never
/// waits), so there is nothing to cancel.
public struct OpenPipe: Future {
    /// Set when it yields its result: polled again, it fails (it would make
    /// a second pipe).
    var isDone = false

    public mutating func poll(_ context: inout Context) -> Poll<Result<(reader: PipeStream, writer: PipeStream), WeftError>> {
        if isDone { return .ready(.failure(.polledAgain("pipe"))) }
        guard let loop = EventLoop.current else { return .ready(.failure(.outsideRuntime("pipe"))) }
        isDone = true
        return .ready(Result { () throws(WeftError) in
            if let error = loop.refusesNewHandle(operation: "pipe") { throw error }
            var descriptors: [uv_file] = [-1, -1]
            try check(uv_pipe(&descriptors, Int32(UV_NONBLOCK_PIPE.rawValue), Int32(UV_NONBLOCK_PIPE.rawValue)), "pipe")
            let reader: PipeStream
            do throws(WeftError) {
                reader = try PipeStream.adopting(descriptors[0], kind: .pipe, loop: loop)
            } catch {
                weft_close(descriptors[1])
                throw error
            }
            return (reader, try PipeStream.adopting(descriptors[1], kind: .pipe, loop: loop))
        })
    }
}
