import CLibUV
import CWeftSupport

/// A listening TCP socket.
///
/// ```swift
/// let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
/// print(try listener.localAddress)       // the port the OS picked
/// let stream = try runtime.block(on: listener.accept()).get()
/// ```
///
/// Accept errors never kill the listener. When the process runs out of file
/// descriptors (`EMFILE`/`ENFILE`), libuv closes the connections waiting in the
/// backlog (using a reserved descriptor, so clients see a close instead of a
/// hang) and the listener keeps listening; accepting resumes by itself once
/// descriptors are free. Such errors are counted in ``acceptErrorCount`` and the
/// latest is in ``lastAcceptError``; a pending ``accept()`` simply keeps waiting.
///
/// Closing the listener (``close()``, or dropping it) wakes a pending `accept()`
/// with a `.closed` error and closes the connections accepted but not yet taken.
///
/// Like ``TCPStream`` it is `Sendable` but used only on its loop thread:
/// `@unchecked Sendable` is sound because every entry point checks the thread
/// (failing with `.wrongThread`), and `close()`/`deinit` elsewhere hand the
/// close to the loop.
public final class TCPListener: @unchecked Sendable {
    let core: ListenerCore

    private init(core: ListenerCore) {
        self.core = core
    }

    deinit {
        core.closeOnLoop()
    }

    /// Binds `address` and starts listening with a backlog of `backlog`.
    ///
    /// Port 0 binds an ephemeral port (see ``localAddress``). Uses `runtime`, or
    /// when it is `nil` the runtime running the calling thread (inside a task).
    /// Fails with `EADDRINUSE`, `EADDRNOTAVAIL`, `EACCES`, … naming the address;
    /// with `.wrongThread` for a runtime that belongs to another thread, and with
    /// `.shutDown` for one that was shut down (it could never accept).
    public static func bind(
        _ address: SocketAddress, backlog: Int = 1024, runtime: Runtime? = nil
    ) throws(WeftError) -> TCPListener {
        guard let loop = runtime?.core ?? LoopCore.current else {
            throw WeftError(.invalidArgument, operation: "bind \(address)",
                            detail: "no runtime: pass one, or call bind from inside a task")
        }
        if let error = loop.refusesNewHandle(operation: "bind \(address)") { throw error }
        guard backlog > 0 && backlog <= Int(Int32.max) else {
            throw WeftError(.invalidArgument, operation: "bind \(address)", detail: "backlog \(backlog) must be positive")
        }
        let core = try ListenerCore(loop: loop)
        do {
            try core.listen(on: address, backlog: Int32(backlog))
        } catch {
            core.close()
            throw error
        }
        return TCPListener(core: core)
    }

    /// A future of the next connection. Several tasks may wait in an accept on
    /// the same listener at once; each connection goes to one of them.
    ///
    /// **Cancellation:** cancel-safe: connections the OS has accepted wait in
    /// the listener (up to 128, then libuv stops accepting) until an accept
    /// future returns one, so dropping a pending accept loses nothing.
    public func accept() -> Accept {
        Accept(listener: self)
    }

    /// The stream of accepted connections; it ends when the listener is closed.
    public var incoming: Incoming {
        Incoming(listener: self)
    }

    /// The address the listener is bound to (with the real port when bound to 0).
    public var localAddress: SocketAddress {
        get throws(WeftError) {
            if let error = core.wrongThread("localAddress") { throw error }
            guard let handle = core.handle else { throw WeftError(.closed, operation: "localAddress") }
            return try socketAddress(operation: "localAddress") { uv_tcp_getsockname(handle, $0, $1) }
        }
    }

    /// Stops listening; a pending `accept()` fails with `.closed`. Idempotent.
    public func close() {
        core.closeOnLoop()
    }

    /// Failed accepts so far (e.g. `EMFILE`); the listener kept going after each.
    public var acceptErrorCount: Int { core.acceptErrorCount }

    /// The latest accept error, if any.
    public var lastAcceptError: WeftError? { core.lastAcceptError }
}

/// The owner of a listening `uv_tcp_t` (same lifetime rules as `StreamCore`:
/// allocated apart, `data` unretained, freed in the close callback).
///
/// Connections are accepted inside libuv's connection callback, as they
/// arrive, into a bounded queue that `accept()` futures take from: libuv then
/// accepts every pending connection in one loop iteration instead of pausing
/// its watcher after each one until a task calls `uv_accept`. When the queue
/// is full the callback leaves the connection with libuv, which stops
/// accepting until `pollAccept` makes room (backpressure).
final class ListenerCore: TCPHandleOwner {
    let loop: LoopCore
    private(set) var handle: UnsafeMutablePointer<uv_tcp_t>?
    /// Connections accepted and not yet handed to an `accept()`.
    private let accepted = RingBuffer<StreamCore>(capacity: 16)
    /// At most this many connections wait in `accepted`.
    static let acceptQueueLimit = 128
    /// Whether libuv holds an accepted connection we have not taken (it stops
    /// accepting until we do).
    private var libuvHoldsConnection = false
    /// The tasks waiting in an accept. A connection (or the close) wakes them
    /// all: one takes the connection, the others find none and wait again.
    var acceptors = WaitingWakers()
    private(set) var acceptErrorCount = 0
    private(set) var lastAcceptError: WeftError?

    init(loop: LoopCore) throws(WeftError) {
        self.loop = loop
        handle = try makeHandle(on: loop)
    }

    deinit {
        close()
    }

    func listen(on address: SocketAddress, backlog: Int32) throws(WeftError) {
        let operation = "bind \(address)"
        try check(address.withSockAddr { uv_tcp_bind(handle!, $0, 0) }, operation)
        // libuv reports most bind errors (EADDRINUSE) only when listening.
        try check(uv_listen(weft_tcp_stream(handle!), backlog) { server, status in
            guard let data = server?.pointee.data else { return }
            Unmanaged<ListenerCore>.fromOpaque(data).takeUnretainedValue().connectionArrived(status: status)
        }, operation)
    }

    private func connectionArrived(status: Int32) {
        if status < 0 {
            recordAcceptError(status)
            return
        }
        if accepted.count >= Self.acceptQueueLimit {
            libuvHoldsConnection = true  // libuv pauses until pollAccept takes it
        } else if let client = acceptFromLibuv() {
            accepted.append(client)
        }
        acceptors.wakeAll()
    }

    /// Takes the connection libuv holds; nil (error recorded) if that fails.
    private func acceptFromLibuv() -> StreamCore? {
        guard let handle else { return nil }
        let client: StreamCore
        do {
            client = try StreamCore(loop: loop)
        } catch {
            recordAcceptError(UV_ENOMEM.rawValue)
            return nil
        }
        let result = uv_accept(weft_tcp_stream(handle), client.stream!)
        if result < 0 {
            client.close()
            recordAcceptError(result)
            return nil
        }
        return client
    }

    private func recordAcceptError(_ code: Int32) {
        acceptErrorCount += 1
        lastAcceptError = WeftError(uvCode: code, operation: "accept")
    }

    func pollAccept(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>> {
        if let error = wrongThread("accept") { return .ready(.failure(error)) }
        guard handle != nil else { return .ready(.failure(WeftError(.closed, operation: "accept"))) }
        if libuvHoldsConnection {
            // Room is about to be made: move libuv's connection to the queue,
            // which also lets libuv accept again.
            libuvHoldsConnection = false
            if let client = acceptFromLibuv() { accepted.append(client) }
        }
        guard let client = accepted.popFirst() else {
            acceptors.register(context.waker)
            return .pending
        }
        return .ready(.success(TCPStream(core: client)))
    }

    func close() {
        guard let handle else { return }
        self.handle = nil
        weft_close_and_free(weft_tcp_handle(handle))
        while let client = accepted.popFirst() { client.close() }
        acceptors.wakeAll()
    }
}

/// The next connection of a ``TCPListener``. See ``TCPListener/accept()``.
public struct Accept: Future {
    let listener: TCPListener

    public mutating func poll(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>> {
        listener.core.pollAccept(&context)
    }
}

/// Accepted connections as a stream. See ``TCPListener/incoming``.
///
/// Yields `.failure` for a connection that could not be set up (the listener
/// keeps going) and ends (`nil`) once the listener is closed.
public struct Incoming: PollStream {
    let listener: TCPListener

    public mutating func pollNext(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>?> {
        switch listener.core.pollAccept(&context) {
        case .pending: return .pending
        case .ready(.failure(let error)) where error.kind == .closed: return .ready(nil)
        case .ready(let result): return .ready(result)
        }
    }
}
