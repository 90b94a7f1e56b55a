import CLibUV
import CWeftSupport

/// The owner of a listening `uv_tcp_t` (same lifetime rules as `TCPConnection`:
/// allocated apart, `data` unretained, freed in the close callback). Confined
/// to the loop thread.
///
/// Connections are accepted inside libuv's connection callback, as they
/// arrive, into a bounded queue that `accept()` futures take from: libuv then
/// accepts every pending connection in one loop iteration instead of pausing
/// its watcher after each one until a task calls `uv_accept`. When the queue
/// is full the callback leaves the connection with libuv, which stops
/// accepting until `pollAccept` makes room (backpressure).
final class TCPAcceptor: TCPHandleOwner {
    let loop: EventLoop
    private(set) var handle: UnsafeMutablePointer<uv_tcp_t>?
    /// Connections accepted and not yet handed to an `accept()`.
    private let accepted = RingBuffer<TCPConnection>(capacity: 16)
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

    /// A listening handle for `address`'s family; with `reusePort`, other
    /// sockets (on other loops, or in other processes) may bind the same
    /// address, and the kernel spreads the connections over them.
    init(loop: EventLoop, family: SocketAddress.Family, reusePort: Bool) throws(WeftError) {
        self.loop = loop
        handle = try makeHandle(on: loop, family: family, reusePort: reusePort)
    }

    deinit {
        close()
    }

    func listen(on address: SocketAddress, backlog: Int32) throws(WeftError) {
        let operation = "bind \(address)"
        try check(address.withSockAddr { uv_tcp_bind(handle!, $0, 0) }, operation)
        // libuv reports most bind errors (EADDRINUSE) only when listening.
        try check(uv_listen(weft_tcp_stream(handle!), backlog) { server, status in
            handleOwner(server, as: TCPAcceptor.self)?.connectionArrived(status: status)
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
    private func acceptFromLibuv() -> TCPConnection? {
        guard let handle else { return nil }
        let client: TCPConnection
        do {
            client = try TCPConnection(loop: loop)
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

    func pollAccept(_ context: inout Context) -> Poll<Result<TCPConnection, WeftError>> {
        if let error = wrongThread("accept") { return .ready(.failure(error)) }
        guard Budget.consume(orWaking: context.waker) else { return .pending }
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
        return .ready(.success(client))
    }

    /// The address the socket is bound to.
    func localAddress() throws(WeftError) -> SocketAddress {
        guard let handle else { throw WeftError(.closed, operation: "localAddress") }
        return try socketAddress(operation: "localAddress") { uv_tcp_getsockname(handle, $0, $1) }
    }

    func close() {
        guard let handle else { return }
        self.handle = nil
        weft_close_and_free(weft_tcp_handle(handle))
        while let client = accepted.popFirst() { client.close() }
        acceptors.wakeAll()
    }
}
