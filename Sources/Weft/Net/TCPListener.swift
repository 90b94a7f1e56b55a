import Synchronization

/// A listening TCP socket.
///
/// ```swift
/// let runtime = try Runtime()
/// let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
/// print(try listener.localAddress)       // the port the OS picked
/// let client = runtime.spawn(TCPStream.connectFuture(to: try listener.localAddress))
/// let stream = try runtime.block(on: listener.acceptFuture()).get()
/// ```
///
/// Accept errors never kill the listener. When the process runs out of file
/// descriptors (`EMFILE`/`ENFILE`), the listener closes the connections waiting
/// in the backlog (through a descriptor it holds in reserve, so clients see a
/// close instead of a hang) and keeps listening; accepting resumes by itself
/// once descriptors are free. Such errors are counted in ``acceptErrorCount``
/// and the latest is in ``lastAcceptError``; a pending ``acceptFuture()`` simply keeps
/// waiting. The loop's statistics count them too, with the connections shed and
/// the time of the latest (``RuntimeStatistics/acceptsOutOfDescriptors``), and
/// its report shows them.
///
/// Closing the listener (``close()``; a pending accept holds it, so it is not
/// dropped meanwhile) wakes a pending `acceptFuture()`
/// with a `.closed` error and closes the connections accepted but not yet taken.
///
/// Like ``TCPStream`` it is `Sendable` but used only on its loop thread:
/// `@unchecked Sendable` is sound because every entry point checks the thread
/// (failing with `.wrongThread`), `close()`/`deinit` elsewhere hand the close
/// to the loop, and ``localAddress`` is a constant read once at bind.
public final class TCPListener: @unchecked Sendable {
    let acceptor: StreamAcceptor
    /// The bound address, read on the loop right after binding: it never
    /// changes, so any thread may read it.
    private let boundAddress: Result<SocketAddress, WeftError>
    /// Set by ``close()`` on whichever thread calls it, so ``localAddress``
    /// fails with `.closed` from then on, on every thread.
    private let closeCalled = Atomic<Bool>(false)

    private init(acceptor: StreamAcceptor) {
        self.acceptor = acceptor
        self.boundAddress = acceptor.boundAddress ?? .failure(WeftError(.closed, operation: "localAddress"))
    }

    deinit {
        acceptor.closeOnLoop()
    }

    /// Binds `address` and starts listening with a backlog of `backlog`.
    ///
    /// Port 0 binds an ephemeral port (see ``localAddress``). Uses `runtime`, or
    /// when it is `nil` the runtime running the calling thread (inside a task).
    ///
    /// With `reusePort`, the socket has `SO_REUSEPORT`: several listeners (one
    /// per loop of a ``LoopGroup``, say) may bind the same address, each with
    /// `reusePort`, and the kernel spreads new connections over them by a hash
    /// of the client's address and port. Bind the first to port 0, then the
    /// others to the port it got.
    ///
    /// Fails with `EADDRINUSE`, `EADDRNOTAVAIL`, `EACCES`, … naming the address;
    /// with `.wrongThread` for a runtime that belongs to another thread, and with
    /// `.shutDown` for one that was shut down (it could never accept).
    ///
    /// The same as ``bind(_:options:runtime:)`` with `backlog` and `reusePort`
    /// as the only options set.
    public static func bind(
        _ address: SocketAddress, backlog: Int = 1024, reusePort: Bool = false, runtime: Runtime? = nil
    ) throws(WeftError) -> TCPListener {
        try bind(address, options: SocketOptions(reusePort: reusePort, backlog: backlog), runtime: runtime)
    }

    /// Binds `address` with `options` (backlog, `SO_REUSEPORT`,
    /// `IPV6_V6ONLY`, buffer sizes and linger, which accepted connections
    /// inherit) and starts listening. Otherwise as
    /// ``bind(_:backlog:reusePort:runtime:)``; an option out of range fails
    /// with `.invalidArgument` naming it.
    public static func bind(
        _ address: SocketAddress, options: SocketOptions, runtime: Runtime? = nil
    ) throws(WeftError) -> TCPListener {
        guard let loop = runtime?.loop ?? EventLoop.current else {
            throw WeftError(.invalidArgument, operation: "bind \(address)",
                            detail: "no runtime: pass one, or call bind from inside a task")
        }
        if let error = loop.refusesNewHandle(operation: "bind \(address)") { throw error }
        try options.validate(operation: "bind \(address)", binding: .ip(address.family))
        let acceptor = StreamAcceptor(loop: loop)
        do {
            try acceptor.listen(on: address, options: options)
        } catch {
            acceptor.close()
            throw error
        }
        return TCPListener(acceptor: acceptor)
    }

    /// A future of the next connection. Several tasks may wait in an accept on
    /// the same listener at once; each connection goes to one of them.
    ///
    /// **Cancellation:** cancel-safe: connections the OS has accepted wait in
    /// the listener (up to 128, then it stops accepting until one is taken) until an accept
    /// future returns one, so dropping a pending accept loses nothing.
    public func acceptFuture() -> Accept {
        Accept(listener: self)
    }

    /// The stream of accepted connections; it ends when the listener is closed.
    public var incoming: Incoming {
        Incoming(listener: self)
    }

    /// The address the listener is bound to (with the real port when bound
    /// to 0). Readable from any thread (it is fixed at bind), so async code off
    /// the loop, such as top-level code, can learn the port.
    /// Fails with `.closed` once the listener is closed.
    public var localAddress: SocketAddress {
        get throws(WeftError) {
            if closeCalled.load(ordering: .acquiring) || (acceptor.loop.isOnLoopThread && acceptor.isClosed) {
                throw WeftError(.closed, operation: "localAddress")
            }
            return try boundAddress.get()
        }
    }

    /// Stops listening; a pending `acceptFuture()` fails with `.closed`. Idempotent.
    public func close() {
        closeCalled.store(true, ordering: .releasing)
        acceptor.closeOnLoop()
    }

    /// Failed accepts so far (e.g. `EMFILE`); the listener kept going after
    /// each. Any thread.
    public var acceptErrorCount: Int { acceptor.acceptErrorCount }

    /// The latest accept error, if any. Any thread.
    public var lastAcceptError: WeftError? { acceptor.lastAcceptError }
}

/// The next connection of a ``TCPListener``. See ``TCPListener/acceptFuture()``.
public struct Accept: Future {
    let listener: TCPListener

    public mutating func poll(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>> {
        listener.acceptor.pollAccept(&context).map { $0.map(TCPStream.init(connection:)) }
    }
}

/// Accepted connections as a stream (`Sendable`, as its listener is). See
/// ``TCPListener/incoming``.
///
/// Yields each connection as it is accepted and ends (`nil`) once the
/// listener is closed. A failed accept (out of descriptors, a connection that
/// could not be set up) is not yielded: the listener counts it in
/// ``TCPListener/acceptErrorCount`` (the latest in ``TCPListener/lastAcceptError``) and
/// keeps going. `.failure` only for a poll off the loop thread (`.wrongThread`).
public struct Incoming: PollStream, Sendable {
    let listener: TCPListener

    public mutating func pollNext(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>?> {
        listener.acceptor.pollNextAccepted(&context).map { $0?.map(TCPStream.init(connection:)) }
    }
}

extension SocketAddress {
    /// Of a name's addresses, the one a bind by name binds: its first IPv4
    /// address, else its first; its first IPv6 address when an IPv6 option
    /// (`ipv6Only`) is set, which an IPv4 address refuses (a name with both
    /// failed, the option blamed).
    static func toBind(_ addresses: [SocketAddress], ipv6Option: Bool) -> SocketAddress? {
        let preferred: Family = ipv6Option ? .ipv6 : .ipv4
        return addresses.first { $0.family == preferred } ?? addresses.first
    }
}

extension TCPListener {
    /// A future that resolves `host` (a numeric address needs no lookup) and
    /// binds its first address, IPv4 preferred (`localhost` gives 127.0.0.1
    /// where it has both; IPv6 when `ipv6Only` is set), on the runtime
    /// polling it; the options as in ``bind(_:backlog:reusePort:runtime:)``.
    public static func bindFuture(host: String, port: Int, backlog: Int = 1024, reusePort: Bool = false) -> BindByName {
        BindByName(host: host, port: port, options: SocketOptions(reusePort: reusePort, backlog: backlog))
    }

    /// ``bindFuture(host:port:backlog:reusePort:)`` with every socket option: the
    /// poll form of the async `bind(host:port:options:)`.
    public static func bindFuture(host: String, port: Int, options: SocketOptions) -> BindByName {
        BindByName(host: host, port: port, options: options)
    }
}

/// Resolves a host name and binds a listener to it. See
/// ``TCPListener/bindFuture(host:port:backlog:reusePort:)``.
///
/// **Cancellation:** dropping it cancels the lookup; nothing is bound before
/// it completes.
public struct BindByName: Future {
    let host: String
    let port: Int
    let options: SocketOptions
    var lookup: Resolve?
    /// Set when it yields its result: polled again, it fails (it would bind a second socket).
    var isDone = false

    public mutating func poll(_ context: inout Context) -> Poll<Result<TCPListener, WeftError>> {
        if isDone { return .ready(.failure(.polledAgain("bind \(host):\(port)"))) }
        return pollBind(&context).markingDone(&isDone)
    }

    private mutating func pollBind(_ context: inout Context) -> Poll<Result<TCPListener, WeftError>> {
        if lookup == nil {
            // As the lookup's: not `bind`'s "no runtime", for a numeric host.
            guard EventLoop.current != nil else { return .ready(.failure(.outsideRuntime("bind \(host):\(port)"))) }
            if let numeric = try? SocketAddress(host: host, port: port) {
                return .ready(Result { () throws(WeftError) in try TCPListener.bind(numeric, options: options) })
            }
            lookup = resolveFuture(host: host, port: port)
        }
        guard case .ready(let resolved) = lookup!.poll(&context) else { return .pending }
        return .ready(resolved.mapError { $0.within("bind \(host):\(port)") }.flatMap { addresses in
            guard let address = SocketAddress.toBind(addresses, ipv6Option: options.ipv6Only != nil) else {
                return .failure(WeftError(.invalidArgument, operation: "bind \(host):\(port)", detail: "no address found"))
            }
            return Result { () throws(WeftError) in try TCPListener.bind(address, options: options) }
        })
    }
}
