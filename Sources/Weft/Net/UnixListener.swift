/// A listening Unix domain stream socket.
///
/// Bound on the runtime running the calling thread (or the one named): from
/// async code, inside a task of a ``LoopThread``.
///
/// <!-- snippet: compile-only: serves until the process ends -->
/// ```swift
/// let loop = try LoopThread()
/// try await loop.spawn {
///     let listener = try UnixListener.bind(.path("/tmp/echo.sock"))
///     for try await connection in listener.connections {
///         loop.spawn { try await connection.write(try await connection.read()) }
///     }
/// }.value
/// ```
///
/// It accepts through the same acceptor as ``TCPListener`` (its own socket
/// under a `uv_poll_t`, a bounded queue of accepted connections, the same
/// shedding when out of descriptors), and each connection is a
/// ``UnixStream``. A socket file it created is removed when it closes (if the
/// file is still that socket); an abstract name needs no file.
///
/// Like ``TCPListener`` it is `Sendable` but used only on its loop thread:
/// `@unchecked Sendable` is sound because every entry point checks the thread
/// (failing with `.wrongThread`), and `close()`/`deinit` elsewhere hand the
/// close to the loop.
public final class UnixListener: @unchecked Sendable {
    let acceptor: StreamAcceptor
    /// The address it was bound to.
    public let localAddress: UnixAddress

    private init(acceptor: StreamAcceptor, address: UnixAddress) {
        self.acceptor = acceptor
        localAddress = address
    }

    deinit {
        acceptor.closeOnLoop()
    }

    /// Binds `address` and starts listening (`options.backlog`; the send
    /// buffer size is set on each connection it accepts), on `runtime` or,
    /// when `nil`, the runtime running the calling thread.
    ///
    /// Fails with `.invalidArgument` when the path or name is empty, holds a
    /// NUL or is longer than ``UnixAddress/maximumLength`` bytes, or for an
    /// option a Unix socket ignores (`reusePort`, `ipv6Only`, `linger`,
    /// `receiveBufferSize`: see ``SocketOptions``); with
    /// `EADDRINUSE` (its detail saying so) when the path exists or the
    /// abstract name is taken; `ENOENT` or `EACCES` for a directory that is
    /// missing or closed to this process; `.wrongThread`/`.shutDown` as
    /// ``TCPListener/bind(_:options:runtime:)``.
    public static func bind(
        _ address: UnixAddress, options: SocketOptions = SocketOptions(), runtime: Runtime? = nil
    ) throws(WeftError) -> UnixListener {
        let operation = "bind \(address)"
        guard let loop = runtime?.loop ?? EventLoop.current else {
            throw WeftError(.invalidArgument, operation: operation,
                            detail: "no runtime: pass one, or call bind from inside a task")
        }
        if let error = loop.refusesNewHandle(operation: operation) { throw error }
        try options.validate(operation: operation, binding: .unixDomain)
        let acceptor = StreamAcceptor(loop: loop, kind: .unixDomain)
        do {
            try acceptor.listen(unix: address, options: options)
        } catch {
            acceptor.close()
            guard error.code == .addressInUse else { throw error }
            let detail = switch address {
            case .path: "the path exists; remove the file first if no process serves it"
            case .abstract: "another socket holds this abstract name"
            }
            throw WeftError(error.kind, operation: error.operation, detail: detail)
        }
        return UnixListener(acceptor: acceptor, address: address)
    }

    /// A future of the next connection (the poll form of ``accept()``).
    ///
    /// **Cancellation:** cancel-safe, as ``TCPListener/accept()``.
    public func acceptFuture() -> UnixAccept {
        UnixAccept(listener: self)
    }

    /// The stream of accepted connections; it ends when the listener is closed.
    public var incoming: UnixIncoming {
        UnixIncoming(listener: self)
    }

    /// Stops listening, removes the socket file it created; a pending accept
    /// fails with `.closed`. Idempotent.
    public func close() {
        acceptor.closeOnLoop()
    }

    /// Failed accepts so far (e.g. `EMFILE`); the listener kept going after
    /// each. Any thread.
    public var acceptErrorCount: Int { acceptor.acceptErrorCount }

    /// The latest accept error, if any. Any thread.
    public var lastAcceptError: WeftError? { acceptor.lastAcceptError }
}

/// The next connection of a ``UnixListener``. See ``UnixListener/acceptFuture()``.
public struct UnixAccept: Future {
    let listener: UnixListener

    public mutating func poll(_ context: inout Context) -> Poll<Result<UnixStream, WeftError>> {
        listener.acceptor.pollAccept(&context).map { $0.map(UnixStream.init(connection:)) }
    }
}

/// Accepted connections as a stream. See ``UnixListener/incoming``.
///
/// Yields each connection as it is accepted and ends (`nil`) once the
/// listener is closed. A failed accept (out of descriptors, a connection that
/// could not be set up) is not yielded: the listener counts it in
/// ``UnixListener/acceptErrorCount`` (the latest in ``UnixListener/lastAcceptError``) and
/// keeps going. `.failure` only for a poll off the loop thread (`.wrongThread`).
public struct UnixIncoming: PollStream, Sendable {
    let listener: UnixListener

    public mutating func pollNext(_ context: inout Context) -> Poll<Result<UnixStream, WeftError>?> {
        listener.acceptor.pollNextAccepted(&context).map { $0?.map(UnixStream.init(connection:)) }
    }
}
