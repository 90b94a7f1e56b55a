import CLibUV

/// A UDP socket on a Weft runtime.
///
/// ```swift
/// let loop = try LoopThread(name: "udp")
/// defer { loop.shutdown() }
/// let reply = try await loop.spawn { () async throws -> [UInt8] in
///     let server = try UDPSocket.bind(SocketAddress("127.0.0.1:0"))
///     let client = try UDPSocket.bind(SocketAddress("127.0.0.1:0"))
///     try await client.send(Array("ping".utf8), to: try server.localAddress)
///     let datagram = try await server.receive()
///     try await server.send(datagram.bytes, to: datagram.sender)   // echo it back
///     return try await client.receive().bytes
/// }.value
/// precondition(reply == Array("ping".utf8))
/// ```
///
/// Every operation that waits comes in two forms: the async one
/// (``send(_:to:)-([UInt8],_)``, ``receive()``, ``receive(into:)``,
/// ``datagrams``) and a poll future (``sendFuture(_:to:)-([UInt8],_)``,
/// ``receiveFuture()``, ``receiveFuture(into:)``, ``incoming``).
/// ``receive(into:)`` reuses the caller's buffer, and ``send(_:to:)-(ArraySlice<UInt8>,_)``
/// sends a slice of it, so an echo allocates nothing per datagram:
///
/// <!-- snippet: compile-only: echoes until the process ends; prelude: udpSocket -->
/// ```swift
/// var buffer = [UInt8](repeating: 0, count: 2048)
/// while true {
///     let receipt = try await socket.receive(into: &buffer)
///     try await socket.send(buffer[..<receipt.count], to: receipt.sender)
/// }
/// ```
///
/// - **Receiving** starts when someone first receives and stops once
///   ``Options/receiveQueueLimit`` datagrams (64 by default) wait unreceived,
///   until a receive finds them all taken (not as soon as one is: the queue's
///   memory starts over only once it is empty), so a peer can make Weft hold
///   at most that many, however fast it sends;
///   the rest wait in the kernel's socket buffer (see
///   ``setReceiveBufferSize(_:)``) or are dropped by the kernel, as UDP allows.
///   Each ``UDPDatagram`` says who sent it and whether it was truncated (longer
///   than ``Options/maximumDatagramSize``).
/// - **Sending** never drops a datagram silently: a send completes once the
///   kernel took it, or fails with its error. What the kernel cannot take at
///   once is queued, up to ``Options/sendQueueLimit`` bytes; beyond that a
///   send waits for room (backpressure). A datagram over 65,507 bytes (the
///   IPv4 limit, applied to both families) fails with `.invalidArgument`.
/// - **Connected mode** (``connect(to:)``): sends without an address go to the
///   peer, only its datagrams are received, and an ICMP "port unreachable"
///   surfaces as `ECONNREFUSED` on the next receive (or send).
///
/// The socket belongs to its runtime's loop thread: the async methods run
/// there, the poll and synchronous ones fail with `.wrongThread` elsewhere. It
/// is closed by ``close()`` or when the last reference goes away; closing
/// wakes every pending operation with a `.closed` error.
///
/// `@unchecked Sendable` is sound because the only state, `endpoint`, is
/// touched solely on the loop thread: every entry point checks the thread
/// first, and `close()`/`deinit` elsewhere hand the close to the loop.
public final class UDPSocket: @unchecked Sendable {
    /// How a socket is bound, and the bounds on what Weft holds for it.
    public struct Options: Sendable, Hashable {
        /// `SO_REUSEADDR`. Off by default: on Linux it lets another UDP socket
        /// that sets it bind the same address and take part of its datagrams.
        public var reuseAddress = false
        /// `SO_REUSEPORT`: sockets that all set it may bind the same address;
        /// the kernel spreads datagrams over them by a hash of the sender.
        public var reusePort = false
        /// `IPV6_V6ONLY` when binding an IPv6 address (`nil`: the system's
        /// default; an IPv4 address refuses it).
        public var ipv6Only: Bool?
        /// `SO_RCVBUF`, in bytes (`nil`: the system's default).
        public var receiveBufferSize: Int?
        /// `SO_SNDBUF`, in bytes (`nil`: the system's default).
        public var sendBufferSize: Int?
        /// The longest datagram received whole; longer ones are truncated to
        /// it and marked ``UDPDatagram/isTruncated``. 1 to 65,536.
        public var maximumDatagramSize = 65_536
        /// Receiving stops once this many datagrams wait unreceived, and starts
        /// again when a receive finds none left (1 to 65,536).
        public var receiveQueueLimit = 64
        /// Sends wait while this many bytes are queued (1 KiB to 1 GiB).
        public var sendQueueLimit = 256 * 1024

        /// The defaults, or the options given.
        public init(
            reuseAddress: Bool = false, reusePort: Bool = false, ipv6Only: Bool? = nil,
            receiveBufferSize: Int? = nil, sendBufferSize: Int? = nil, maximumDatagramSize: Int = 65_536,
            receiveQueueLimit: Int = 64, sendQueueLimit: Int = 256 * 1024
        ) {
            self.reuseAddress = reuseAddress
            self.reusePort = reusePort
            self.ipv6Only = ipv6Only
            self.receiveBufferSize = receiveBufferSize
            self.sendBufferSize = sendBufferSize
            self.maximumDatagramSize = maximumDatagramSize
            self.receiveQueueLimit = receiveQueueLimit
            self.sendQueueLimit = sendQueueLimit
        }

        /// Fails with `.invalidArgument` naming the first option out of
        /// range, or `ipv6Only` for an IPv4 address.
        func validate(operation: String, family: SocketAddress.Family) throws(WeftError) {
            func invalid(_ detail: String) -> WeftError { WeftError(.invalidArgument, operation: operation, detail: detail) }
            guard (1...65_536).contains(maximumDatagramSize) else {
                throw invalid("maximumDatagramSize \(maximumDatagramSize) must be from 1 to 65536 bytes")
            }
            guard (1...65_536).contains(receiveQueueLimit) else {
                throw invalid("receiveQueueLimit \(receiveQueueLimit) must be from 1 to 65536 datagrams")
            }
            guard (1024...(1 << 30)).contains(sendQueueLimit) else {
                throw invalid("sendQueueLimit \(sendQueueLimit) must be from 1024 to 1073741824 bytes")
            }
            try socketOptions.validate(operation: operation, binding: .ip(family))
        }

        var socketOptions: SocketOptions {
            SocketOptions(reuseAddress: reuseAddress, reusePort: reusePort, receiveBufferSize: receiveBufferSize,
                          sendBufferSize: sendBufferSize, ipv6Only: ipv6Only)
        }
    }

    /// The largest datagram ``sendFuture(_:to:)-([UInt8],_)`` accepts: 65,507 bytes.
    public static let maximumDatagramSize = DatagramEndpoint.maximumPayload

    let endpoint: DatagramEndpoint

    private init(endpoint: DatagramEndpoint) {
        self.endpoint = endpoint
    }

    deinit {
        endpoint.closeOnLoop()
    }

    /// The error for a call from a thread other than the loop's, if it is
    /// one; `operation` is built only then.
    func wrongThread(_ operation: @autoclosure () -> String) -> WeftError? {
        endpoint.loop.wrongThread(operation())
    }

    /// Binds a UDP socket to `address` (port 0: a free port, see
    /// ``localAddress``; `0.0.0.0` or `::` for every interface), on `runtime`
    /// or, when `nil`, the runtime running the calling thread.
    ///
    /// Fails with `EADDRINUSE` (another socket has the address; see
    /// ``Options/reusePort``), `EADDRNOTAVAIL`, `EACCES`, … naming the address;
    /// `.invalidArgument` for an option out of range; `.wrongThread` or
    /// `.shutDown` as ``TCPListener/bind(_:options:runtime:)``.
    public static func bind(
        _ address: SocketAddress, options: Options = Options(), runtime: Runtime? = nil
    ) throws(WeftError) -> UDPSocket {
        let operation = "bind udp \(address)"
        guard let loop = runtime?.loop ?? EventLoop.current else {
            throw WeftError(.invalidArgument, operation: operation,
                            detail: "no runtime: pass one, or call bind from inside a task")
        }
        if let error = loop.refusesNewHandle(operation: operation) { throw error }
        try options.validate(operation: operation, family: address.family)
        let endpoint = try DatagramEndpoint(loop: loop, receiveBufferLength: options.maximumDatagramSize,
                                            receiveQueueLimit: options.receiveQueueLimit, sendQueueLimit: options.sendQueueLimit)
        do {
            try endpoint.bind(address, options: options.socketOptions)
        } catch {
            endpoint.close()
            throw error
        }
        return UDPSocket(endpoint: endpoint)
    }

    /// A future that resolves `host` (a numeric address needs no lookup) and
    /// binds its first address, IPv4 preferred; the poll form of
    /// ``bind(host:port:options:)``.
    public static func bindFuture(host: String, port: Int, options: Options = Options()) -> UDPBindByName {
        UDPBindByName(host: host, port: port, options: options)
    }

    /// A future that sends `bytes` as one datagram to `address`: ready once
    /// the kernel took it (`.success`) or refused it. The poll form of
    /// ``send(_:to:)-([UInt8],_)``.
    ///
    /// **Cancellation:** dropping it before its first poll sends nothing;
    /// after, the datagram may already be on its way.
    public func sendFuture(_ bytes: [UInt8], to address: SocketAddress) -> UDPSend {
        UDPSend(socket: self, bytes: bytes[...], address: address)
    }

    /// A future that sends `bytes`, a slice such as the filled prefix of a
    /// receive buffer, as one datagram to `address`. As
    /// ``sendFuture(_:to:)-([UInt8],_)``; the poll form of ``send(_:to:)-([UInt8],_)``.
    public func sendFuture(_ bytes: ArraySlice<UInt8>, to address: SocketAddress) -> UDPSend {
        UDPSend(socket: self, bytes: bytes, address: address)
    }

    /// A future that sends `bytes` to the connected peer (see
    /// ``connect(to:)``; `EDESTADDRREQ` when not connected); the poll form of
    /// ``send(_:)``.
    public func sendFuture(_ bytes: [UInt8]) -> UDPSend {
        UDPSend(socket: self, bytes: bytes[...], address: nil)
    }

    /// A future of the next datagram; the poll form of ``receive()``.
    ///
    /// **Cancellation:** cancel-safe: a datagram is taken from the queue only
    /// when the future completes.
    public func receiveFuture() -> UDPReceive {
        UDPReceive(socket: self)
    }

    /// A future that copies the next datagram into the start of `buffer` and
    /// hands the buffer back with a ``UDPReceipt`` (its length, its sender,
    /// whether it was cut short); the poll form of ``receive(into:)``. Pass
    /// the buffer in with `consume` (or swapped out of a property) so that
    /// writing into it needs no copy; it comes back in the output, with its
    /// count unchanged, whatever the result.
    ///
    /// A datagram longer than `buffer` is cut to it and marked
    /// ``UDPReceipt/isTruncated``; the rest of it is lost, as with `recvfrom`.
    ///
    /// **Cancellation:** cancel-safe: a datagram is taken from the queue only
    /// when the future completes.
    public func receiveFuture(into buffer: [UInt8]) -> UDPReceiveInto {
        UDPReceiveInto(socket: self, buffer: buffer)
    }

    /// The received datagrams as a poll stream; it ends when the socket is
    /// closed. An error the socket reports (`ECONNREFUSED` on a connected
    /// socket) is yielded as a `.failure`, and the stream goes on.
    public var incoming: UDPIncoming {
        UDPIncoming(socket: self)
    }

    /// Sends to and receives from `address` only; sends without an address
    /// go there. Fails with `EISCONN` when already connected (``disconnect()``
    /// first), `.closed` once closed, `.invalidArgument` for port 0 (Linux
    /// accepts it and leaves the socket unconnected, so that every send
    /// failed with `EDESTADDRREQ`). An error from an earlier peer that no
    /// receive took is dropped, and so are datagrams from anyone else that
    /// were received before and not yet taken. Fails with `EBUSY` while
    /// sends wait in the socket's queue (await them first): sent without an
    /// address, they would go to the new peer.
    public func connect(to address: SocketAddress) throws(WeftError) {
        let operation = "connect udp \(address)"
        if let error = wrongThread("connect") { throw error }
        guard address.port != 0 else {
            throw WeftError(.invalidArgument, operation: operation, detail: "port 0 names no peer")
        }
        try endpoint.connect(to: address, operation: operation)
    }

    /// Undoes ``connect(to:)``. Fails with `EBUSY` while sends wait in the
    /// socket's queue, as ``connect(to:)`` does.
    public func disconnect() throws(WeftError) {
        if let error = wrongThread("disconnect") { throw error }
        try endpoint.connect(to: nil, operation: "disconnect")
    }

    /// Closes the socket (on the loop thread: at once there, else as soon as
    /// the loop runs); pending operations fail with `.closed`. Idempotent.
    public func close() {
        endpoint.closeOnLoop()
    }

    /// Whether the socket is closed, on any thread; elsewhere than the loop
    /// thread it turns true once the loop has closed it, so after a
    /// ``close()`` called there, not at once.
    public var isClosed: Bool { endpoint.isClosedOnAnyThread }

    /// The address the socket is bound to (with the real port when bound to 0).
    public var localAddress: SocketAddress {
        get throws(WeftError) {
            if let error = wrongThread("localAddress") { throw error }
            return try endpoint.address(peer: false)
        }
    }

    /// The connected peer's address (`ENOTCONN` when not connected).
    public var peerAddress: SocketAddress {
        get throws(WeftError) {
            if let error = wrongThread("peerAddress") { throw error }
            return try endpoint.address(peer: true)
        }
    }

    /// Datagrams received and not yet taken by a receive: never more than
    /// ``Options/receiveQueueLimit``.
    public var queuedDatagramCount: Int {
        get throws(WeftError) {
            if let error = wrongThread("queuedDatagramCount") { throw error }
            return endpoint.queuedDatagramCount
        }
    }

    /// Whether Weft is reading from the socket now (it stops when its queue
    /// fills, until a receive has emptied it).
    public var isReceiving: Bool {
        get throws(WeftError) {
            if let error = wrongThread("isReceiving") { throw error }
            return endpoint.isReceiving
        }
    }

    /// Allows sending to broadcast addresses (`SO_BROADCAST`).
    public func setBroadcast(_ enabled: Bool) throws(WeftError) {
        if let error = wrongThread("setBroadcast") { throw error }
        try endpoint.set("setBroadcast") { uv_udp_set_broadcast($0, enabled ? 1 : 0) }
    }

    /// The time-to-live of unicast datagrams (1 to 255): `IP_TTL`, and on an
    /// IPv6 socket `IPV6_UNICAST_HOPS` too.
    public func setTimeToLive(_ hops: Int) throws(WeftError) {
        if let error = wrongThread("setTimeToLive") { throw error }
        guard (1...255).contains(hops) else {
            throw WeftError(.invalidArgument, operation: "setTimeToLive", detail: "\(hops) must be from 1 to 255")
        }
        try endpoint.setIPOption(.timeToLive, to: Int32(hops), operation: "setTimeToLive")
    }

    /// Joins the multicast group `group` (a numeric address) on the interface
    /// with address `interface` (`nil`: the one the system picks). An IPv6
    /// interface is named by its zone (`::%eth0`, `fe80::1%eth0`); see
    /// ``setMulticastInterface(_:)``. A zone on an IPv6 group
    /// (`ff02::1:3%eth0`) names the interface as well; one that differs from
    /// `interface`'s fails with `.invalidArgument`.
    public func joinMulticastGroup(_ group: String, interface: String? = nil) throws(WeftError) {
        try membership(group, interface: interface, join: true)
    }

    /// Leaves a group joined with ``joinMulticastGroup(_:interface:)``.
    public func leaveMulticastGroup(_ group: String, interface: String? = nil) throws(WeftError) {
        try membership(group, interface: interface, join: false)
    }

    private func membership(_ group: String, interface: String?, join: Bool) throws(WeftError) {
        let operation = "\(join ? "join" : "leave") multicast group \(group)"
        if let error = wrongThread(operation) { throw error }
        guard !group.utf8.contains(0) else {
            throw WeftError(.invalidArgument, operation: operation, detail: "an address contains a NUL character")
        }
        var interface = try interface.map { (interface) throws(WeftError) in try Self.interfaceAddress(interface, operation: operation) }
        if let zone = try Self.zone(ofGroup: group, operation: operation) {
            // libuv joins an IPv6 group on `interface`'s zone alone (the
            // group's is dropped: interface 0, the default).
            if let interface, Self.zone(of: interface) != zone {
                throw WeftError(.invalidArgument, operation: operation,
                                detail: "the group's zone '%\(zone)' and the interface '\(interface)' differ")
            }
            interface = "::%" + zone
        }
        // The group as SocketAddress writes it, without its zone (already in
        // `interface`): libuv cuts an IPv6 address's text at 39 characters
        // (`uv_ip6_addr`), and a longer form still valid when cut
        // ("ff02:0:…:10.1.1.100%lo") joined another group.
        let canonical = (try? SocketAddress(host: group, port: 0)).map { address in
            String(address.host.prefix { $0 != "%" })
        } ?? group
        try endpoint.set(operation) { handle in
            uv_udp_set_membership(handle, canonical, interface, join ? UV_JOIN_GROUP : UV_LEAVE_GROUP)
        }
    }

    /// The zone of an IPv6 `group` (by name, as ``SocketAddress/host`` writes
    /// it), nil for none; the parse's error for an address that is not one.
    private static func zone(ofGroup group: String, operation: String) throws(WeftError) -> String? {
        guard group.contains("%") else { return nil }
        let host: String
        do {
            host = try SocketAddress(host: group, port: 0).host
        } catch {
            throw WeftError(.invalidArgument, operation: operation, detail: "group: \(error.detail)")
        }
        try checkZoneNamesAnInterface(host, operation: operation)
        return zone(of: host)
    }

    /// What follows the `%` of a numeric IPv6 host, nil for none.
    private static func zone(of host: String) -> String? {
        host.firstIndex(of: "%").map { String(host[host.index(after: $0)...]) }
    }

    /// Fails unless the zone of `host` (as ``SocketAddress/host`` writes it:
    /// the interface's name, or the number of one this machine lacks) names
    /// an interface: libuv passes a membership or the multicast interface by
    /// name, and takes one it cannot find as the default interface.
    private static func checkZoneNamesAnInterface(_ host: String, operation: String) throws(WeftError) {
        if let zone = zone(of: host), zone.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
            throw WeftError(.invalidArgument, operation: operation, detail: "zone '%\(zone)' names no interface on this machine")
        }
    }

    /// `interface` as libuv takes it: an IPv4 address, or an IPv6 address
    /// with a zone naming the interface (libuv chooses an IPv6 interface by
    /// the zone alone, and without one silently takes the default; a zone
    /// given by number is passed on by name).
    private static func interfaceAddress(_ interface: String, operation: String) throws(WeftError) -> String {
        let address: SocketAddress
        do {
            address = try SocketAddress(host: interface, port: 0)
        } catch {
            throw WeftError(.invalidArgument, operation: operation, detail: "interface: \(error.detail)")
        }
        guard address.family == .ipv6 else { return interface }
        guard interface.contains("%") else {
            throw WeftError(.invalidArgument, operation: operation,
                            detail: "an IPv6 interface is chosen by its zone: write '\(interface)%NAME' (e.g. '::%eth0')")
        }
        try checkZoneNamesAnInterface(address.host, operation: operation)
        return address.host
    }

    /// The time-to-live of multicast datagrams (0 to 255; 1, the default,
    /// keeps them on the local network): `IP_MULTICAST_TTL`, and on an IPv6
    /// socket `IPV6_MULTICAST_HOPS` too.
    public func setMulticastTimeToLive(_ hops: Int) throws(WeftError) {
        if let error = wrongThread("setMulticastTimeToLive") { throw error }
        guard (0...255).contains(hops) else {
            throw WeftError(.invalidArgument, operation: "setMulticastTimeToLive", detail: "\(hops) must be from 0 to 255")
        }
        try endpoint.setIPOption(.multicastTimeToLive, to: Int32(hops), operation: "setMulticastTimeToLive")
    }

    /// Whether this host's own members of a group receive what it sends there
    /// (`IP_MULTICAST_LOOP`, and on an IPv6 socket `IPV6_MULTICAST_LOOP` too;
    /// on by default). What is sent out of the loopback interface reaches them
    /// either way.
    public func setMulticastLoopback(_ enabled: Bool) throws(WeftError) {
        if let error = wrongThread("setMulticastLoopback") { throw error }
        try endpoint.setIPOption(.multicastLoopback, to: enabled ? 1 : 0, operation: "setMulticastLoopback")
    }

    /// Sends multicast datagrams out of the interface with address
    /// `interface`: an IPv4 address, or for IPv6 an address whose zone names
    /// the interface (`::%eth0`, `fe80::1%eth0`; Linux picks an IPv6
    /// interface by its index, which only the zone gives). An IPv6 address
    /// without a zone, or with one that names no interface, fails with
    /// `.invalidArgument`.
    public func setMulticastInterface(_ interface: String) throws(WeftError) {
        if let error = wrongThread("setMulticastInterface") { throw error }
        let interface = try Self.interfaceAddress(interface, operation: "setMulticastInterface")
        try endpoint.set("setMulticastInterface") { uv_udp_set_multicast_interface($0, interface) }
    }

    /// Asks for a kernel receive buffer (`SO_RCVBUF`) of `bytes` and returns
    /// the size in force (Linux doubles the request and caps it at
    /// `net.core.rmem_max`).
    @discardableResult
    public func setReceiveBufferSize(_ bytes: Int) throws(WeftError) -> Int {
        if let error = wrongThread("receiveBufferSize") { throw error }
        guard (1...Int(Int32.max)).contains(bytes) else {
            throw WeftError(.invalidArgument, operation: "receiveBufferSize", detail: "\(bytes) must be from 1 to \(Int32.max)")
        }
        return try endpoint.bufferSize(receive: true, setting: Int32(bytes))
    }

    /// The kernel receive buffer's size (`SO_RCVBUF`).
    public var receiveBufferSize: Int {
        get throws(WeftError) {
            if let error = wrongThread("receiveBufferSize") { throw error }
            return try endpoint.bufferSize(receive: true, setting: 0)
        }
    }

    /// Asks for a kernel send buffer (`SO_SNDBUF`) of `bytes`; returns the size in force.
    @discardableResult
    public func setSendBufferSize(_ bytes: Int) throws(WeftError) -> Int {
        if let error = wrongThread("sendBufferSize") { throw error }
        guard (1...Int(Int32.max)).contains(bytes) else {
            throw WeftError(.invalidArgument, operation: "sendBufferSize", detail: "\(bytes) must be from 1 to \(Int32.max)")
        }
        return try endpoint.bufferSize(receive: false, setting: Int32(bytes))
    }
}

/// A datagram a ``UDPSocket`` received.
public struct UDPDatagram: Sendable, Hashable {
    /// The payload (at most ``UDPSocket/Options/maximumDatagramSize`` bytes).
    public let bytes: [UInt8]
    /// Who sent it.
    public let sender: SocketAddress
    /// Whether it was longer than the receive buffer and cut short.
    public let isTruncated: Bool

    /// A datagram (for tests and mock transports; sockets make their own).
    public init(bytes: [UInt8], sender: SocketAddress, isTruncated: Bool = false) {
        self.bytes = bytes
        self.sender = sender
        self.isTruncated = isTruncated
    }
}

/// What a receive into a caller's buffer got (see ``UDPSocket/receive(into:)``):
/// how many bytes, from whom, and whether the datagram was cut short.
public struct UDPReceipt: Sendable, Hashable {
    /// The bytes written at the start of the buffer: the datagram's length,
    /// or the buffer's when it was truncated.
    public let count: Int
    /// Who sent it.
    public let sender: SocketAddress
    /// Whether the datagram was longer than the buffer (or than
    /// ``UDPSocket/Options/maximumDatagramSize``) and cut short.
    public let isTruncated: Bool

    /// A receipt (for tests and mock transports; sockets make their own).
    public init(count: Int, sender: SocketAddress, isTruncated: Bool = false) {
        self.count = count
        self.sender = sender
        self.isTruncated = isTruncated
    }
}

/// Sends one datagram. See ``UDPSocket/sendFuture(_:to:)-([UInt8],_)``.
///
/// **Cancellation:** dropping it before its first poll sends nothing; once
/// polled the datagram may be sent even if it is dropped.
public struct UDPSend: Future {
    let socket: UDPSocket
    let bytes: ArraySlice<UInt8>
    let address: SocketAddress?
    var inFlight: DatagramSendRequest?
    /// Whether the first poll tries `uv_udp_try_send`: false when the async
    /// send's fast path just did and the kernel said `EAGAIN`.
    var tryFirst: Bool
    /// Set when it yields its result: polled again, it fails (it would send the datagram again).
    var isDone = false

    init(socket: UDPSocket, bytes: ArraySlice<UInt8>, address: SocketAddress?, tryFirst: Bool = true) {
        self.socket = socket
        self.bytes = bytes
        self.address = address
        self.tryFirst = tryFirst
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        if isDone { return .ready(.failure(.polledAgain(Self.operation(address)))) }
        let endpoint = socket.endpoint
        if let error = endpoint.loop.wrongThread(Self.operation(address)) { return .ready(.failure(error)) }
        defer { tryFirst = true }
        return endpoint.pollSend(&context, bytes, to: address, operation: Self.operation(address), inFlight: &inFlight, tryFirst: tryFirst)
            .markingDone(&isDone)
    }

    /// "send to ADDRESS", or "send" on a connected socket: built only for an error.
    static func operation(_ address: SocketAddress?) -> String {
        address.map { "send to \($0)" } ?? "send"
    }
}

/// Receives one datagram. See ``UDPSocket/receiveFuture()``.
///
/// **Cancellation:** cancel-safe: nothing is taken until it completes.
public struct UDPReceive: Future {
    let socket: UDPSocket

    public mutating func poll(_ context: inout Context) -> Poll<Result<UDPDatagram, WeftError>> {
        if let error = socket.wrongThread("receive") { return .ready(.failure(error)) }
        return socket.endpoint.pollReceive(&context, UDPDatagram.converting).map { $0.flatMap { $0 } }
    }
}

/// Receives one datagram into a caller's buffer. See
/// ``UDPSocket/receiveFuture(into:)``.
///
/// The future owns the buffer and hands it back with the receipt, so no
/// array is allocated per datagram: the bytes are copied from where the
/// kernel put them (the socket's arena) into the buffer.
///
/// **Cancellation:** cancel-safe: nothing is taken until it completes.
public struct UDPReceiveInto: Future {
    let socket: UDPSocket
    var buffer: [UInt8]

    public mutating func poll(_ context: inout Context) -> Poll<(buffer: [UInt8], receipt: Result<UDPReceipt, WeftError>)> {
        Self.poll(socket.endpoint, &context, into: &buffer)
    }

    /// The poll of this future and of ``BorrowedUDPReceiveInto``.
    @inline(__always)
    static func poll(
        _ endpoint: DatagramEndpoint, _ context: inout Context, into buffer: inout [UInt8]
    ) -> Poll<(buffer: [UInt8], receipt: Result<UDPReceipt, WeftError>)> {
        if let error = endpoint.wrongThread("receive") { return .ready((buffer, .failure(error))) }
        let polled = endpoint.pollReceive(&context) { copy($0, $1, into: &buffer) }
        switch polled {
        case .pending: return .pending
        case .ready(let result): return .ready((buffer, result.flatMap { $0 }))
        }
    }

    /// Copies a datagram's `bytes` into the start of `buffer` (as many as fit)
    /// and makes its receipt.
    @inline(__always)
    static func copy(
        _ received: DatagramEndpoint.Received, _ bytes: UnsafeRawBufferPointer, into buffer: inout [UInt8]
    ) -> Result<UDPReceipt, WeftError> {
        let count = min(bytes.count, buffer.count)
        if count > 0 {
            buffer.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: count) }
        }
        guard let sender = received.sender else { return .failure(UDPDatagram.nonIPSender) }
        return .success(UDPReceipt(count: count, sender: sender, isTruncated: received.isTruncated || count < bytes.count))
    }
}

/// ``UDPReceiveInto`` for the async `receive(into:)`: the socket's method
/// that awaits it keeps the socket (so its endpoint) alive and open
/// meanwhile, so the endpoint is borrowed, not retained by the future and in
/// each poll (about 2% of the async UDP echo's samples).
struct BorrowedUDPReceiveInto: Future {
    let endpoint: Unmanaged<DatagramEndpoint>
    var buffer: [UInt8]

    init(endpoint: DatagramEndpoint, buffer: consuming [UInt8]) {
        self.endpoint = .passUnretained(endpoint)
        self.buffer = buffer
    }

    mutating func poll(_ context: inout Context) -> Poll<(buffer: [UInt8], receipt: Result<UDPReceipt, WeftError>)> {
        endpoint._withUnsafeGuaranteedRef { UDPReceiveInto.poll($0, &context, into: &buffer) }
    }
}

/// The datagrams of a ``UDPSocket`` as a stream. See ``UDPSocket/incoming``.
public struct UDPIncoming: PollStream, Sendable {
    let socket: UDPSocket

    public mutating func pollNext(_ context: inout Context) -> Poll<Result<UDPDatagram, WeftError>?> {
        if let error = socket.wrongThread("receive") { return .ready(.failure(error)) }
        switch socket.endpoint.pollReceive(&context, UDPDatagram.converting) {
        case .pending: return .pending
        case .ready(.failure(let error)) where error.kind == .closed: return .ready(nil)
        case .ready(let result): return .ready(result.flatMap { $0 })
        }
    }
}

extension UDPDatagram {
    /// A datagram of its own array: a copy of `bytes`.
    static func converting(_ received: DatagramEndpoint.Received, _ bytes: UnsafeRawBufferPointer) -> Result<UDPDatagram, WeftError> {
        guard let sender = received.sender else { return .failure(nonIPSender) }
        return .success(UDPDatagram(bytes: [UInt8](bytes), sender: sender, isTruncated: received.isTruncated))
    }

    /// The error for a datagram from an address that is not IPv4 or IPv6.
    static var nonIPSender: WeftError {
        WeftError(.invalidArgument, operation: "receive", detail: "the sender is not an IPv4 or IPv6 address")
    }
}

/// Resolves a host name and binds a UDP socket to it. See
/// ``UDPSocket/bindFuture(host:port:options:)``.
///
/// **Cancellation:** dropping it cancels the lookup; nothing is bound before
/// it completes.
public struct UDPBindByName: Future {
    let host: String
    let port: Int
    let options: UDPSocket.Options
    var lookup: Resolve?
    /// Set when it yields its result: polled again, it fails (it would bind a second socket).
    var isDone = false

    public mutating func poll(_ context: inout Context) -> Poll<Result<UDPSocket, WeftError>> {
        if isDone { return .ready(.failure(.polledAgain("bind udp \(host):\(port)"))) }
        return pollBind(&context).markingDone(&isDone)
    }

    private mutating func pollBind(_ context: inout Context) -> Poll<Result<UDPSocket, WeftError>> {
        if lookup == nil {
            // As the lookup's: not `bind`'s "no runtime", for a numeric host.
            guard EventLoop.current != nil else { return .ready(.failure(.outsideRuntime("bind udp \(host):\(port)"))) }
            if let numeric = try? SocketAddress(host: host, port: port) {
                return .ready(Result { () throws(WeftError) in try UDPSocket.bind(numeric, options: options) })
            }
            lookup = resolveFuture(host: host, port: port)
        }
        guard case .ready(let resolved) = lookup!.poll(&context) else { return .pending }
        return .ready(resolved.mapError { $0.within("bind udp \(host):\(port)") }.flatMap { addresses in
            guard let address = SocketAddress.toBind(addresses, ipv6Option: options.ipv6Only != nil) else {
                return .failure(WeftError(.invalidArgument, operation: "bind udp \(host):\(port)", detail: "no address found"))
            }
            return Result { () throws(WeftError) in try UDPSocket.bind(address, options: options) }
        })
    }
}
