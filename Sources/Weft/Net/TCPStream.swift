import CLibUV

/// A TCP connection on a Weft runtime.
///
/// Get one from ``TCPStream/connect(to:)`` or ``TCPListener/accept()``. It is a
/// byte stream (``AsyncRead``, ``AsyncBufRead``, ``AsyncWrite``), so everything
/// generic over those works on it: `readExact`, `readToEnd`, `writeAll`,
/// `copy(from:to:)`.
///
/// - **Reading** starts when someone first reads, and continues until 64 KiB
///   (``defaultBufferLimit``; see ``setBufferLimits(unread:queued:)``) are
///   buffered unread; then the stream stops reading from the socket
///   (`uv_read_stop`) until the reader has read all of it, so a peer cannot
///   make it buffer without bound. An idle connection holds no read buffer. An async
///   ``read(into:)`` that waits with nothing buffered lends the stream its
///   buffer, and libuv reads straight into it.
/// - **Writing** tries `uv_try_write` first and queues only what the kernel did not
///   take, copied into a buffer the write owns. A write completes once libuv has
///   the bytes; once 64 KiB is queued, writes wait (a write queues at most
///   what fills the queue to that limit, and reports how much it took).
/// - **Errors** are values: each carries the libuv name and message and the
///   operation (`read: ECONNRESET (connection reset by peer)`).
///
/// The stream belongs to its runtime's loop thread. It is `Sendable` so async
/// code can hand it between tasks, but it is only ever *used* on its loop: the
/// async methods run there, and the poll methods and the synchronous ones
/// (options, addresses) check the calling thread and fail with `.wrongThread`
/// elsewhere. It is closed by ``close()`` or when the last reference goes away
/// (including the futures using it) — on the loop thread, wherever that
/// happens; closing wakes every pending operation with a `.closed` error.
///
/// **Several tasks** may wait on one stream at once (two readers, two writers,
/// a writer and a task awaiting ``shutdown()``): an event wakes every task
/// waiting for it, so none is left waiting. Concurrent reads share the bytes in
/// arrival order, but which task gets which bytes is up to the scheduler, and
/// concurrent writes may interleave; the usual shape is one reader and one
/// writer (see ``split()``).
///
/// **Cancellation:** dropping a pending `read(upTo:)`, `read(into:)` or
/// `readFuture` loses nothing (the bytes stay buffered: they are
/// cancel-safe); `readExact` and `readToEnd` are not (the bytes they read
/// go with them). Dropping a pending `writeAll` may leave a
/// prefix written (not cancel-safe); bytes already accepted are still sent
/// while the stream stays open. ``close()`` (and dropping the last reference,
/// a `writeAll` future's included) drops what is still queued for the kernel:
/// when every byte must reach the peer, await `flush()` or ``shutdown()``
/// first. A dropped future may leave one spurious wake-up of its task.
///
/// `@unchecked Sendable` is sound because the only state, `connection`, is touched
/// solely on the loop thread: every entry point checks `isOnLoopThread` first
/// (``isClosed`` reads an atomic flag instead), and `close()`/`deinit` called
/// elsewhere hand the close to the loop.
public final class TCPStream: @unchecked Sendable {
    let connection: StreamConnection

    init(connection: StreamConnection) {
        self.connection = connection
    }

    deinit {
        connection.closeOnLoop()
    }

    /// The error for a call from a thread other than the loop's, if it is one.
    func wrongThread(_ operation: String) -> WeftError? {
        connection.wrongThread(operation)
    }

    /// A future that connects to `address`. Composes with ``timeout(_:_:)``:
    /// dropping it mid-connect closes the socket.
    public static func connectFuture(to address: SocketAddress) -> Connect {
        Connect(address: address)
    }

    /// A future that resolves `host` (with `getaddrinfo`; a numeric address
    /// needs no lookup) and connects to its addresses by Happy Eyeballs
    /// (RFC 8305, see ``connect(toAny:)``).
    public static func connectFuture(host: String, port: Int) -> ConnectByName {
        ConnectByName(host: host, port: port)
    }

    /// A future that connects to the first of `addresses` that accepts, by
    /// Happy Eyeballs (RFC 8305): IPv6 and IPv4 alternate, IPv6 first; the
    /// next address is tried when an attempt fails or after 250 ms without an
    /// answer; the first connection wins and the others are closed. Fails,
    /// when every address failed, with the first refusal or reset, else the
    /// last error; with `.invalidArgument` for an empty list.
    public static func connectFuture(toAny addresses: [SocketAddress]) -> ConnectToAny {
        ConnectToAny(addresses, operation: "connect")
    }

    /// A future of up to `maxLength` bytes; empty at end of stream (and at
    /// once for a `maxLength` of 0).
    public func readFuture(upTo maxLength: Int = 64 * 1024) -> ReadSome {
        ReadSome(stream: self, connection: connection, maxLength: maxLength)
    }

    /// Closes the connection (on the loop thread: at once there, else as soon
    /// as the loop runs). Idempotent. Writes still queued (accepted by a
    /// `pollWrite` or a `writeAll` that has not flushed) are dropped, not sent:
    /// flush first (`flush()`, or ``shutdown()``, which flushes) to send them.
    public func close() {
        connection.closeOnLoop()
    }

    /// Whether the stream is closed (by ``close()`` or otherwise). Safe on any
    /// thread; elsewhere than the loop thread it turns true once the loop has
    /// closed the stream, so after a ``close()`` called there, not at once.
    public var isClosed: Bool { connection.isClosedOnAnyThread }

    /// Turns Nagle's algorithm off (`true`) or on.
    public func setNoDelay(_ enabled: Bool) throws(WeftError) {
        if let error = wrongThread("setNoDelay") { throw error }
        try connection.setNoDelay(enabled)
    }

    /// The backpressure limits, per stream: reading from the socket pauses
    /// once `unread` bytes are buffered and not yet read (it resumes once all
    /// of them are read), and writes wait once `queued` bytes are queued for the
    /// kernel. Both default to 64 KiB (``defaultBufferLimit``): with one 64
    /// KiB read buffer in flight, a peer can make the server hold at most
    /// 192 KiB for this connection, however it behaves. Raise them for bulk
    /// transfers on few connections; lower them for many idle peers. A write
    /// waiting for room when `queued` is raised goes on at once; lowered under
    /// what is queued, new writes wait until the queue falls under it, while a
    /// flush still returns once its own bytes are written.
    ///
    /// Fails with `.invalidArgument` for a limit below 1 KiB or above 1 GiB,
    /// `.wrongThread` off the stream's loop, `.closed` once closed.
    public func setBufferLimits(unread: Int, queued: Int) throws(WeftError) {
        try connection.setBufferLimits(unread: unread, queued: queued)
    }

    /// Sets the socket's send and receive buffer sizes (`SO_SNDBUF`,
    /// `SO_RCVBUF`) and linger (`SO_LINGER`) from `options`; the options that
    /// only binding applies (reuse, backlog, `IPV6_V6ONLY`) must be left at
    /// their defaults (`.invalidArgument` otherwise). A listener's options
    /// (``TCPListener/bind(_:options:runtime:)``) are inherited by the
    /// connections it accepts.
    public func setOptions(_ options: SocketOptions) throws(WeftError) {
        if let error = wrongThread("setOptions") { throw error }
        try options.validateForConnectedSocket(operation: "setOptions")
        try connection.configure(options, operation: "setOptions")
    }

    /// The default of both ``setBufferLimits(unread:queued:)`` limits: 64 KiB.
    public static let defaultBufferLimit = StreamConnection.defaultReadHighWater

    /// The limits in force (see ``setBufferLimits(unread:queued:)``); on the
    /// stream's loop.
    public var bufferLimits: (unread: Int, queued: Int) {
        get throws(WeftError) {
            if let error = wrongThread("bufferLimits") { throw error }
            return (connection.readHighWater, connection.writeHighWater)
        }
    }

    /// Turns TCP keep-alive on with the given idle delay (whole seconds, at
    /// least one), or off. A delay past Linux's limit, 32,767 s
    /// (`TCP_KEEPIDLE`), fails with `.invalidArgument` and changes nothing.
    public func setKeepAlive(_ enabled: Bool, delay: Duration = .seconds(60)) throws(WeftError) {
        if let error = wrongThread("setKeepAlive") { throw error }
        let seconds = max(1, delay.components.seconds)
        if enabled && seconds > Self.maximumKeepAliveDelaySeconds {
            throw WeftError(.invalidArgument, operation: "setKeepAlive",
                            detail: "delay \(delay) is past the kernel's limit of \(Self.maximumKeepAliveDelaySeconds) seconds")
        }
        try connection.setKeepAlive(enabled, delaySeconds: UInt32(min(seconds, Self.maximumKeepAliveDelaySeconds)))
    }

    /// Linux's largest `TCP_KEEPIDLE`, in seconds.
    static let maximumKeepAliveDelaySeconds: Int64 = 32_767

    /// The local end's address.
    public var localAddress: SocketAddress {
        get throws(WeftError) {
            if let error = wrongThread("localAddress") { throw error }
            return try connection.address(peer: false)
        }
    }

    /// The remote end's address.
    public var peerAddress: SocketAddress {
        get throws(WeftError) {
            if let error = wrongThread("peerAddress") { throw error }
            return try connection.address(peer: true)
        }
    }

    /// The read and write halves, to use from two tasks (their async
    /// operations hop to the stream's loop; their poll futures are polled
    /// there). The connection closes when both halves (and the stream) are gone.
    public func split() -> (reader: TCPReadHalf, writer: TCPWriteHalf) {
        (TCPReadHalf(stream: self), TCPWriteHalf(stream: self))
    }
}

extension TCPStream: AsyncBufRead, AsyncWrite {
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

/// The reading half of a ``TCPStream``. See ``TCPStream/split()``.
public typealias TCPReadHalf = ReadHalf<TCPStream>

/// The writing half of a ``TCPStream``. See ``TCPStream/split()``.
public typealias TCPWriteHalf = WriteHalf<TCPStream>

/// Reads up to a number of bytes. See ``TCPStream/readFuture(upTo:)`` and
/// ``UnixStream/readFuture(upTo:)``.
///
/// **Cancellation:** cancel-safe: nothing is consumed until it completes.
public struct ReadSome: Future {
    /// The public stream (``TCPStream`` or ``UnixStream``), held so that it
    /// stays open while the read is pending: its deinit closes the connection.
    let stream: AnyObject
    /// The stream's connection (TCP or Unix: the same machinery).
    let connection: StreamConnection
    let maxLength: Int

    public mutating func poll(_ context: inout Context) -> Poll<Result<[UInt8], WeftError>> {
        connection.pollReadSome(&context, maxLength: maxLength)
    }
}

/// ``ReadSome`` for the async `read(upTo:)`: the stream's method that awaits
/// it keeps the stream (so its connection) alive and open meanwhile, so the
/// connection is borrowed, where ReadSome retains and releases both.
struct BorrowedReadSome: Future {
    /// Unmanaged, not `unowned(unsafe)`: that retained and released it in
    /// every poll instead.
    let connection: Unmanaged<StreamConnection>
    let maxLength: Int

    init(connection: StreamConnection, maxLength: Int) {
        self.connection = .passUnretained(connection)
        self.maxLength = maxLength
    }

    mutating func poll(_ context: inout Context) -> Poll<Result<[UInt8], WeftError>> {
        connection._withUnsafeGuaranteedRef { $0.pollReadSome(&context, maxLength: maxLength) }
    }
}

extension StreamConnection {
    /// Up to `maxLength` of the bytes buffered, once any are (``ReadSome``).
    @inline(__always)
    func pollReadSome(_ context: inout Context, maxLength: Int) -> Poll<Result<[UInt8], WeftError>> {
        guard maxLength >= 0 else {
            return .ready(.failure(WeftError(.invalidArgument, operation: "read(upTo: \(maxLength))",
                                             detail: "the length must not be negative")))
        }
        if let error = wrongThread("read") { return .ready(.failure(error)) }
        // Nothing asked, nothing to wait for (as a read into an empty buffer).
        if maxLength == 0 { return .ready(.success([])) }
        switch pollFillBuffer(&context) {
        case .pending: return .pending
        case .ready(.failure(let error)): return .ready(.failure(error))
        case .ready(.success(let available)):
            let bytes = [UInt8](available.prefix(maxLength))
            consume(bytes.count)
            return .ready(.success(bytes))
        }
    }
}

/// Reads into a caller's buffer. See ``TCPStream/read(into:)``.
///
/// The future owns the buffer and hands it back with the count, so no array
/// is allocated per read. While the read waits with nothing buffered, the
/// buffer's storage is lent to the stream and libuv reads straight into it
/// (one `read` system call into the caller's storage, as with Tokio; no pool
/// buffer, no copy). See ``StreamConnection/lend(_:)``. The future keeps the
/// array meanwhile, so a concurrent reader ending the loan cannot take it.
///
/// **Cancellation:** cancel-safe: nothing is consumed until it completes; bytes
/// that reached the lent buffer of a dropped read stay buffered in the stream.
///
/// Only the async `read(into:)` awaits it, and the stream's method that does
/// keeps the stream (so its connection) alive and open meanwhile: the
/// connection is borrowed, not retained (as ``BorrowedReadSome``).
struct ReadInto: Future {
    /// The stream's connection (TCP or Unix: the same machinery).
    let connection: Unmanaged<StreamConnection>
    var buffer: [UInt8]
    let count: Int
    /// The loan's number while `buffer` is lent to the stream.
    var loan: UInt64?

    init(connection: StreamConnection, buffer: consuming [UInt8]) {
        self.connection = .passUnretained(connection)
        self.buffer = buffer
        count = self.buffer.count
    }

    mutating func poll(_ context: inout Context) -> Poll<(buffer: [UInt8], count: Result<Int, WeftError>)> {
        connection._withUnsafeGuaranteedRef { poll(&context, $0) }
    }

    private mutating func poll(_ context: inout Context, _ connection: StreamConnection) -> Poll<(buffer: [UInt8], count: Result<Int, WeftError>)> {
        // A loan another reader ended left its bytes in the chunks, read below.
        if let loan = loan.take(), let filled = connection.reclaim(loan), filled > 0 {
            return .ready((buffer, .success(filled)))
        }
        if let error = connection.wrongThread("read") { return .ready((buffer, .failure(error))) }
        if count == 0 { return .ready((buffer, .success(0))) }
        switch buffer.withUnsafeMutableBytes({ connection.pollRead(&context, into: $0) }) {
        case .ready(let result):
            return .ready((buffer, result))
        case .pending:
            loan = connection.lend(&buffer)
            return .pending
        }
    }
}
