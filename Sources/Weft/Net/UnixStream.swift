/// A connected Unix domain stream socket on a Weft runtime.
///
/// Get one from ``UnixStream/connect(to:)`` (or its poll form
/// ``connectFuture(to:)``) or from ``UnixListener/accept()``. It runs on the
/// same stream machinery as ``TCPStream`` (one `StreamConnection`, over a
/// `uv_pipe_t` instead of a `uv_tcp_t`), so it behaves the same way: a byte
/// stream (``AsyncRead``, ``AsyncBufRead``, ``AsyncWrite``) with the same
/// backpressure both ways (``setBufferLimits(unread:queued:)``), the loop's
/// buffer budget, `uv_try_write` first, half-close (``shutdown()``) and
/// ``split()``.
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
public final class UnixStream: @unchecked Sendable {
    let connection: StreamConnection

    init(connection: StreamConnection) {
        self.connection = connection
    }

    deinit {
        connection.closeOnLoop()
    }

    /// A future that connects to the Unix socket `address`, on the runtime
    /// polling it. A Unix connect completes at once or fails: `ENOENT` (no
    /// such socket), `ECONNREFUSED` (nobody listens, or the path is not a
    /// socket; its detail says so), `EAGAIN` (the listener's
    /// backlog is full); a path too long fails with `.invalidArgument`.
    public static func connectFuture(to address: UnixAddress) -> UnixConnect {
        UnixConnect(address: address)
    }

    /// A future of up to `maxLength` bytes; empty at end of stream (and at
    /// once for a `maxLength` of 0). Cancel-safe.
    public func readFuture(upTo maxLength: Int = 64 * 1024) -> ReadSome {
        ReadSome(stream: self, connection: connection, maxLength: maxLength)
    }

    /// Closes the connection (on the loop thread: at once there, else as soon
    /// as the loop runs). Idempotent. Writes still queued are dropped, not
    /// sent: flush first (`flush()`, or ``shutdown()``, which flushes).
    public func close() {
        connection.closeOnLoop()
    }

    /// Whether the stream is closed, on any thread (see ``TCPStream/isClosed``).
    public var isClosed: Bool { connection.isClosedOnAnyThread }

    /// The backpressure limits, as ``TCPStream/setBufferLimits(unread:queued:)``.
    public func setBufferLimits(unread: Int, queued: Int) throws(WeftError) {
        try connection.setBufferLimits(unread: unread, queued: queued)
    }

    /// Sets the send buffer size of `options`; the others must be left at
    /// their defaults (`.invalidArgument`): the binding options (reuse,
    /// backlog, IPv6), and linger and the receive buffer size, which a Unix
    /// domain stream socket ignores (see ``SocketOptions``).
    public func setOptions(_ options: SocketOptions) throws(WeftError) {
        if let error = connection.wrongThread("setOptions") { throw error }
        // What does nothing here first: a range check would name a value
        // for an option that no value makes work.
        if let inapplicable = options.unixInapplicable {
            throw WeftError(.invalidArgument, operation: "setOptions", detail: inapplicable)
        }
        try options.validateForConnectedSocket(operation: "setOptions")
        try connection.configure(options, operation: "setOptions")
    }

    /// The process, user and group at the other end (`SO_PEERCRED`). On an
    /// accepted stream: the connecting process, as it was when it connected.
    /// On a stream from `connect`: the process that made the listening
    /// socket listen, as it was then (Linux copies them from the listener),
    /// not the one that accepts; a server that listened, then dropped its
    /// privileges or forked, still shows the credentials it had.
    public var peerCredentials: UnixPeerCredentials {
        get throws(WeftError) {
            if let error = connection.wrongThread("peerCredentials") { throw error }
            let (pid, uid, gid) = try connection.peerCredentials()
            return UnixPeerCredentials(processID: pid, userID: uid, groupID: gid)
        }
    }

    /// The read and write halves, to use from two tasks (their async
    /// operations hop to the stream's loop; their poll futures are polled
    /// there). The connection closes when both halves (and the stream) are gone.
    public func split() -> (reader: UnixReadHalf, writer: UnixWriteHalf) {
        (UnixReadHalf(stream: self), UnixWriteHalf(stream: self))
    }
}

/// The credentials of the process at the other end of a Unix socket
/// (`SO_PEERCRED`). See ``UnixStream/peerCredentials``.
public struct UnixPeerCredentials: Sendable, Hashable {
    /// Its process ID.
    public let processID: Int32
    /// Its effective user ID.
    public let userID: UInt32
    /// Its effective group ID.
    public let groupID: UInt32
}

extension UnixStream: AsyncBufRead, AsyncWrite {
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

/// The reading half of a ``UnixStream``. See ``UnixStream/split()``.
public typealias UnixReadHalf = ReadHalf<UnixStream>

/// The writing half of a ``UnixStream``. See ``UnixStream/split()``.
public typealias UnixWriteHalf = WriteHalf<UnixStream>

/// Connects to a Unix socket. See ``UnixStream/connectFuture(to:)``.
///
/// **Cancellation:** it completes at its first poll (a Unix connect never
/// waits), so there is nothing to cancel.
public struct UnixConnect: Future {
    let address: UnixAddress
    /// Set when it yields its result: polled again, it fails (it would connect a second socket).
    var isDone = false

    public mutating func poll(_ context: inout Context) -> Poll<Result<UnixStream, WeftError>> {
        let operation = "connect \(address)"
        if isDone { return .ready(.failure(.polledAgain(operation))) }
        guard let loop = EventLoop.current else { return .ready(.failure(.outsideRuntime(operation))) }
        isDone = true
        return .ready(Result { () throws(WeftError) in
            UnixStream(connection: try StreamConnection.connecting(unix: address, loop: loop, operation: operation))
        })
    }
}
