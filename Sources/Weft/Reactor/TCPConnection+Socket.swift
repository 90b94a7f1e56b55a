import CLibUV
import CWeftSupport
import Glibc

/// Connecting, socket options and addresses.
extension TCPConnection {
    /// Starts connecting to `address`: the request completes (wakes its
    /// waiters) once the connection is made or has failed. It is kept as
    /// `connectOperation` until then, so a close forgets its waiters.
    func startConnect(to address: SocketAddress, operation name: String) throws(WeftError) -> StreamRequest<uv_connect_t> {
        guard let handle else { throw closedError(name) }
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
        guard let handle else { throw closedError("setNoDelay") }
        try check(uv_tcp_nodelay(handle, enabled ? 1 : 0), "uv_tcp_nodelay")
    }

    func setKeepAlive(_ enabled: Bool, delaySeconds: UInt32) throws(WeftError) {
        guard let handle else { throw closedError("setKeepAlive") }
        try check(uv_tcp_keepalive(handle, enabled ? 1 : 0, delaySeconds), "uv_tcp_keepalive")
    }

    func address(peer: Bool) throws(WeftError) -> SocketAddress {
        let operation = peer ? "peerAddress" : "localAddress"
        guard let handle else { throw closedError(operation) }
        return try socketAddress(operation: operation) { address, length in
            peer ? uv_tcp_getpeername(handle, address, length) : uv_tcp_getsockname(handle, address, length)
        }
    }

    /// Hands the socket over to another loop: returns a duplicate of its
    /// descriptor (close-on-exec) and closes this connection. Only for a
    /// connection nothing has read from or written to yet (just accepted).
    func detachDescriptor() throws(WeftError) -> Int32 {
        guard let handle else { throw closedError("detach") }
        var descriptor: uv_os_fd_t = -1
        try check(uv_fileno(weft_tcp_handle(handle), &descriptor), "uv_fileno")
        let duplicate = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard duplicate >= 0 else { throw WeftError(uvCode: uv_translate_sys_error(errno), operation: "dup") }
        close()
        return duplicate
    }

    /// A connection on `loop` for the connected socket `descriptor`, which it
    /// now owns (on failure it is closed).
    static func adopting(_ descriptor: Int32, loop: EventLoop) throws(WeftError) -> TCPConnection {
        let connection: TCPConnection
        do {
            connection = try TCPConnection(loop: loop)
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        let opened = uv_tcp_open(connection.handle!, descriptor)
        if opened < 0 {
            connection.close()
            Glibc.close(descriptor)
            throw WeftError(uvCode: opened, operation: "uv_tcp_open")
        }
        return connection
    }
}
