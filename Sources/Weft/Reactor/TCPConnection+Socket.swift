import CLibUV

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
}
