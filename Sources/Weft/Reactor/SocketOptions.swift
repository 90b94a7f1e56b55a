import CWeftSupport

/// Options of a socket Weft creates: for ``TCPListener`` and ``UnixListener``
/// when binding (and so for the connections they accept, which get the buffer
/// sizes and linger: a TCP socket inherits them from its listener, Weft sets
/// the send buffer size on each accepted Unix domain socket, which does not),
/// and for a ``TCPStream`` or ``UnixStream`` (`setOptions(_:)`). An option
/// that would do nothing on the socket is refused with `.invalidArgument`:
/// `ipv6Only` for IPv4; `reusePort`, `ipv6Only`, `linger` and
/// `receiveBufferSize` for a Unix domain socket.
///
/// ```swift
/// let address = try SocketAddress("127.0.0.1:0")
/// var options = SocketOptions()
/// options.reusePort = true
/// options.receiveBufferSize = 1 << 20
/// let runtime = try Runtime()
/// let listener = try TCPListener.bind(address, options: options, runtime: runtime)
/// ```
///
/// `nil` leaves an option as the system sets it. Sizes are what is asked of
/// the kernel, which (on Linux) doubles them and caps them at
/// `net.core.rmem_max`/`wmem_max`.
public struct SocketOptions: Sendable, Hashable {
    /// `SO_REUSEADDR` (binding an IP address only): bind a port whose old
    /// connections are still in `TIME_WAIT`. On by default, as libuv sets it.
    public var reuseAddress = true
    /// `SO_REUSEPORT` (binding an IP address only): several sockets, each
    /// with it and of the same user, may bind the same address, and the
    /// kernel spreads the traffic over them. A Unix domain socket refuses it.
    public var reusePort = false
    /// The listen backlog (listeners only): connections the kernel completes
    /// before one is accepted. 1 to `Int32.max`.
    public var backlog = 1024
    /// `SO_RCVBUF`, in bytes.
    public var receiveBufferSize: Int?
    /// `SO_SNDBUF`, in bytes.
    public var sendBufferSize: Int?
    /// `SO_LINGER`: `.zero` makes a close reset the connection (an abortive
    /// close: what is queued is dropped, the peer gets `ECONNRESET`, and no
    /// `TIME_WAIT` is left). Only `.zero`: with a longer linger, Linux's
    /// `close` blocks its thread, non-blocking socket or not, until what is
    /// queued is sent or the time is up, and on a loop that stalls every
    /// other connection and timer for it (Tokio deprecated `set_linger` for
    /// that reason). For a close that waits until the peer has everything,
    /// shut the write side down (``TCPStream/shutdown()``) and read to the
    /// end before closing.
    public var linger: Duration?
    /// `IPV6_V6ONLY` (binding an IPv6 address only; other sockets refuse it):
    /// `true` accepts IPv6 only, `false` IPv4-mapped addresses too; `nil` is
    /// the system's default.
    public var ipv6Only: Bool?

    /// The defaults, or the options given.
    public init(
        reuseAddress: Bool = true, reusePort: Bool = false, backlog: Int = 1024,
        receiveBufferSize: Int? = nil, sendBufferSize: Int? = nil, linger: Duration? = nil, ipv6Only: Bool? = nil
    ) {
        self.reuseAddress = reuseAddress
        self.reusePort = reusePort
        self.backlog = backlog
        self.receiveBufferSize = receiveBufferSize
        self.sendBufferSize = sendBufferSize
        self.linger = linger
        self.ipv6Only = ipv6Only
    }

    /// The socket a listener or UDP socket binds: an IPv4 or IPv6 address,
    /// or a Unix domain socket.
    enum BoundSocket {
        case ip(SocketAddress.Family)
        case unixDomain
    }

    /// Fails with `.invalidArgument` naming the first option out of range, or
    /// one that cannot apply to `socket` and so would silently do nothing:
    /// `ipv6Only` on an IPv4 address; on a Unix domain socket `reusePort`,
    /// `ipv6Only` and the two Linux ignores there (``unixInapplicable``).
    /// (`SO_REUSEADDR` has no effect on a Unix socket either, but it is on by
    /// default and so cannot tell a request.) An option that cannot apply is
    /// named before its range is checked: a Unix socket's linger of 3 s was
    /// told to be `.zero`, which was then refused as having no effect.
    func validate(operation: String, binding socket: BoundSocket) throws(WeftError) {
        let inapplicable: String? = switch socket {
        case .ip(.ipv4) where ipv6Only != nil: "ipv6Only applies to an IPv6 address, not an IPv4 one"
        case .unixDomain where reusePort: "reusePort applies to IP sockets, not to a Unix domain socket"
        case .unixDomain where ipv6Only != nil: "ipv6Only applies to an IPv6 address, not to a Unix domain socket"
        case .unixDomain: unixInapplicable
        default: nil
        }
        if let inapplicable { throw WeftError(.invalidArgument, operation: operation, detail: inapplicable) }
        try validate(operation: operation)
    }

    /// Why an option set here does nothing on a connected Unix domain stream
    /// socket, or nil: Linux's `SO_LINGER` does not delay or reset its close
    /// (a close with `.zero` still ends the peer's stream cleanly), and its
    /// `SO_RCVBUF` bounds nothing (the sender's `SO_SNDBUF` alone limits what
    /// is in flight).
    var unixInapplicable: String? {
        if linger != nil { return "linger has no effect on a Unix domain socket (its close never waits or resets)" }
        if receiveBufferSize != nil {
            return "receiveBufferSize has no effect on a Unix domain stream socket (its sendBufferSize bounds what is in flight)"
        }
        return nil
    }

    /// Fails with `.invalidArgument` naming the first option out of range.
    func validate(operation: String) throws(WeftError) {
        func invalid(_ detail: String) -> WeftError { WeftError(.invalidArgument, operation: operation, detail: detail) }
        guard backlog > 0 && backlog <= Int(Int32.max) else { throw invalid("backlog \(backlog) must be from 1 to \(Int32.max)") }
        for (name, size) in [("receiveBufferSize", receiveBufferSize), ("sendBufferSize", sendBufferSize)] {
            if let size, !(1...Int(Int32.max)).contains(size) {
                throw invalid("\(name) \(size) must be from 1 to \(Int32.max) bytes")
            }
        }
        if let linger, linger != .zero {
            throw invalid("linger \(linger) must be .zero (a reset on close): with a longer one, a close blocks the loop's thread until what is queued is sent or the time is up")
        }
    }

    /// The options as the C helpers take them (-1: leave alone).
    var cOptions: weft_socket_options {
        weft_socket_options(
            reuse_address: reuseAddress, reuse_port: reusePort,
            ipv6_only: ipv6Only.map { $0 ? 1 : 0 } ?? -1,
            receive_buffer_size: receiveBufferSize.map(Int32.init) ?? -1,
            send_buffer_size: sendBufferSize.map(Int32.init) ?? -1,
            linger_seconds: linger.map { Int32($0.components.seconds) } ?? -1)
    }
}

/// Creates, configures and binds a socket (see `weft_socket_bind`): its
/// descriptor, or the error naming `operation` and the call that failed.
func bindSocket(
    _ address: UnsafePointer<sockaddr>, length: Int, type: Int32, options: SocketOptions, listening: Bool, operation: String
) throws(WeftError) -> Int32 {
    var settings = options.cOptions
    var failedCall: UnsafePointer<CChar>?
    let socket = weft_socket_bind(address, Int32(length), type, &settings, listening ? Int32(options.backlog) : 0, &failedCall)
    guard socket >= 0 else {
        let call = failedCall.map { String(cString: $0) } ?? "bind"
        throw WeftError(uvCode: socket, operation: call == "bind" ? operation : "\(operation) (\(call))")
    }
    return socket
}

/// Sets the buffer sizes and linger of `options` on `socket` (see
/// `weft_socket_configure`); an error names `operation` and the option that
/// failed.
func configureSocket(_ socket: Int32, _ options: SocketOptions, operation: String) throws(WeftError) {
    var settings = options.cOptions
    try checkSettingOptions(operation) { weft_socket_configure(socket, &settings, &$0) }
}

/// Runs a C helper that sets socket options and, when one fails, names it in
/// its `failed_call` argument (`weft_socket_configure`,
/// `weft_udp_set_ip_option`): the error reads "operation (setsockopt SO_RCVBUF)".
func checkSettingOptions(_ operation: String, _ call: (inout UnsafePointer<CChar>?) -> Int32) throws(WeftError) {
    var failedCall: UnsafePointer<CChar>?
    let result = call(&failedCall)
    if result < 0 {
        throw WeftError(uvCode: result, operation: "\(operation) (\(failedCall.map { String(cString: $0) } ?? "setsockopt"))")
    }
}

extension SocketOptions {
    /// Whether a buffer size or linger is set: what a connected socket can take.
    var configuresConnections: Bool { receiveBufferSize != nil || sendBufferSize != nil || linger != nil }

    /// Fails with `.invalidArgument` when an option that only binding can
    /// apply (reuse, backlog, `IPV6_V6ONLY`) differs from its default: setting
    /// it on a connected socket would silently do nothing.
    func validateForConnectedSocket(operation: String) throws(WeftError) {
        try validate(operation: operation)
        let defaults = SocketOptions()
        for (name, differs) in [("reuseAddress", reuseAddress != defaults.reuseAddress), ("reusePort", reusePort),
                                ("backlog", backlog != defaults.backlog), ("ipv6Only", ipv6Only != nil)] where differs {
            throw WeftError(.invalidArgument, operation: operation,
                            detail: "\(name) applies when binding, not to a connected socket")
        }
    }
}
