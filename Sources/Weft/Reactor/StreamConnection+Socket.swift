import CLibUV
import CWeftSupport

/// Connecting, socket options and addresses. The TCP ones (connect, Nagle,
/// keep-alive, addresses) are only reached through a ``TCPStream``, whose
/// connection is `.tcp`; on any other kind they fail as if closed.
extension StreamConnection {
    /// Starts connecting to `address`: the request completes (wakes its
    /// waiters) once the connection is made or has failed. It is kept as
    /// `connectOperation` until then, so a close forgets its waiters.
    func startConnect(to address: SocketAddress, operation name: String) throws(WeftError) -> StreamRequest<uv_connect_t> {
        guard let handle = tcpHandle else { throw closedError(name) }
        let operation = StreamRequest<uv_connect_t>(connection: self)
        let result = address.withSockAddr { address in
            uv_tcp_connect(operation.request, handle, address) { request, status in
                StreamRequest<uv_connect_t>.finish(request!).complete(status: status)
            }
        }
        if result < 0 {
            operation.abandon()
            throw WeftError(uvCode: result, operation: name)
        }
        connectOperation = operation
        return operation
    }

    func setNoDelay(_ enabled: Bool) throws(WeftError) {
        guard let handle = tcpHandle else { throw closedError("setNoDelay") }
        try check(uv_tcp_nodelay(handle, enabled ? 1 : 0), "uv_tcp_nodelay")
    }

    func setKeepAlive(_ enabled: Bool, delaySeconds: UInt32) throws(WeftError) {
        guard let handle = tcpHandle else { throw closedError("setKeepAlive") }
        try check(uv_tcp_keepalive(handle, enabled ? 1 : 0, delaySeconds), "uv_tcp_keepalive")
    }

    func address(peer: Bool) throws(WeftError) -> SocketAddress {
        let operation = peer ? "peerAddress" : "localAddress"
        guard let handle = tcpHandle else { throw closedError(operation) }
        return try socketAddress(operation: operation) { address, length in
            peer ? uv_tcp_getpeername(handle, address, length) : uv_tcp_getsockname(handle, address, length)
        }
    }

    /// The socket's descriptor (still owned by the handle).
    func descriptor(_ operation: String) throws(WeftError) -> Int32 {
        guard let stream else { throw closedError(operation) }
        var descriptor: uv_os_fd_t = -1
        try check(uv_fileno(weft_stream_handle(stream), &descriptor), "\(operation) (uv_fileno)")
        return descriptor
    }

    /// Sets the buffer sizes and linger of `options` on the socket.
    func configure(_ options: SocketOptions, operation: String) throws(WeftError) {
        try configureSocket(try descriptor(operation), options, operation: operation)
    }

    /// Hands the socket over to another loop: returns a duplicate of its
    /// descriptor (close-on-exec) and closes this connection. Only for a
    /// connection nothing has read from or written to yet (just accepted).
    func detachDescriptor() throws(WeftError) -> Int32 {
        let descriptor = try descriptor("detach")
        let duplicate = weft_dup_cloexec(descriptor)
        guard duplicate >= 0 else { throw WeftError(uvCode: uv_translate_sys_error(weft_errno()), operation: "dup") }
        close()
        return duplicate
    }

    /// A connection on `loop` for the connected socket `descriptor` (TCP, or a
    /// Unix domain stream socket for `.unixDomain`), the pipe `descriptor`
    /// (`.pipe`: a pipe, a socket pair or a character device, through
    /// `uv_pipe_open`) or the terminal `descriptor` (`.tty`, through
    /// `uv_tty_init`), which it now owns (on failure it is closed; 0, 1 and 2
    /// never are, here or by libuv when the handle closes). libuv makes the
    /// descriptor non-blocking, which a descriptor shared with other processes
    /// (an inherited standard stream) shares with them.
    static func adopting(_ descriptor: Int32, loop: EventLoop, kind: Kind = .tcp) throws(WeftError) -> StreamConnection {
        let connection: StreamConnection
        do {
            connection = try StreamConnection(loop: loop, kind: kind, descriptor: descriptor)
        } catch {
            if descriptor > 2 { weft_close(descriptor) }
            throw error
        }
        let stream = connection.stream!
        let (opened, call): (Int32, String) = switch kind {
        case .tcp: (uv_tcp_open(weft_stream_tcp(stream), descriptor), "uv_tcp_open")
        case .unixDomain, .pipe: (uv_pipe_open(weft_stream_pipe(stream), descriptor), "uv_pipe_open")
        case .tty: (0, "uv_tty_init")  // the handle was made on the descriptor
        }
        if opened < 0 {
            connection.close()
            if descriptor > 2 { weft_close(descriptor) }
            throw WeftError(uvCode: opened, operation: call)
        }
        return connection
    }

    /// A connection on `loop` to the Unix socket `address` (which a Unix
    /// connect reaches at once, or fails).
    static func connecting(unix address: UnixAddress, loop: EventLoop, operation: String) throws(WeftError) -> StreamConnection {
        // Linux refuses a file that is not a socket, and an abstract name
        // nothing is bound to, with the same ECONNREFUSED.
        let refused = switch address {
        case .path: "nothing listens there (a socket file left by a process that ended, or a file that is not a socket)"
        case .abstract: "no socket is bound to this abstract name"
        }
        let descriptor = try address.withSockAddr(operation: operation) { (address, length) throws(WeftError) in
            let result = weft_unix_connect(address, Int32(length))
            if result == UV_ECONNREFUSED.rawValue {
                throw WeftError(.libuv(code: result), operation: operation, detail: refused)
            }
            return try check(result, operation)
        }
        return try adopting(descriptor, loop: loop, kind: .unixDomain)
    }

    /// The peer's process, user and group (`SO_PEERCRED`), for a Unix domain
    /// socket.
    func peerCredentials() throws(WeftError) -> (pid: Int32, uid: UInt32, gid: UInt32) {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        try check(weft_peer_credentials(try descriptor("peerCredentials"), &pid, &uid, &gid), "peerCredentials (SO_PEERCRED)")
        return (pid, uid, gid)
    }
}
