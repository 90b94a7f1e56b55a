import CLibUV
import CWeftSupport
import Synchronization

/// The owner of one `uv_udp_t`: its bounded queue of received datagrams, the
/// accounting of its queued sends, and the wakers of the tasks using it.
/// Confined to the loop thread.
///
/// Handle lifetime: the `uv_udp_t` is allocated apart from this object;
/// `handle.data` points back here unretained; `close()` clears `data` and
/// closes the handle, which is freed in its close callback. A send libuv
/// queues is owned by a ``DatagramSendRequest`` that retains this endpoint
/// and a copy of the bytes until its callback (libuv calls it with
/// `UV_ECANCELED` after a close). The arena is this object's, freed in
/// `close()`: after `uv_close` libuv neither allocates nor reads again.
///
/// **Receiving** starts (`uv_udp_recv_start`) when a receiver finds the queue
/// empty, and stops once ``receiveQueueLimit`` datagrams wait unreceived: Weft
/// then holds at most that many, and what else arrives waits in (or is dropped
/// by) the kernel's socket buffer. The kernel writes each datagram straight
/// into the arena, after the ones queued before it, so queuing one costs no
/// allocation and no copy; the arena starts over whenever the queue empties.
/// Only when its free tail is shorter than ``receiveBufferLength`` does a
/// datagram land in the spare buffer after the arena and get copied out into
/// an array of its size.
///
/// **Sending** tries `uv_udp_try_send` first; what the kernel does not take
/// at once is copied and queued, as long as the queue holds less than
/// ``sendQueueLimit`` bytes; beyond that a sender waits for room. libuv holds
/// one queued datagram at a time (`uv_udp_send`); the send callback hands it
/// the next: libuv sends what waits in its own queue together (`sendmmsg`)
/// and fails a whole batch with the error of its first datagram, so one to an
/// address the kernel refuses failed the datagrams to good peers behind it,
/// unsent. Nothing is dropped by Weft: each send completes with the kernel's
/// verdict on it.
///
/// Exclusivity checks are off for its stored state: it is confined to the
/// loop thread, and no method runs another of its methods while it modifies
/// a property (the wakers it wakes only queue their tasks), so accesses never
/// overlap. The checks cost a thread-local lookup each, several per datagram.
final class DatagramEndpoint: SocketOwner {
    /// A received datagram: where its bytes are, its sender (`nil` only if the
    /// OS gave an address that is not IPv4 or IPv6), and whether it was cut
    /// short. Trivially copyable, so queuing and taking one is a plain copy.
    struct Received {
        /// Where its bytes start in the arena (unused when `isOverflow`).
        let offset: Int
        /// Its length.
        let count: Int
        /// Whether its bytes did not fit in the arena's free tail and wait,
        /// copied out, in `overflows`.
        let isOverflow: Bool
        let sender: SocketAddress?
        let isTruncated: Bool
    }

    /// The largest payload of a UDP datagram over IPv4 (65,535 less the IP and
    /// UDP headers), the bound Weft checks every send against.
    static let maximumPayload = 65_507

    let loop: EventLoop
    /// `loop`'s address, compared (never dereferenced) with the loop running
    /// the calling thread: the fast paths' check, without the retain and
    /// release of `loop` that reading it around a C call costs.
    private let loopAddress: UnsafeMutableRawPointer

    /// Whether the calling thread is running this endpoint's loop right now
    /// (``EventLoop/isRunningOnCallingThread``).
    @inline(__always)
    var isOnRunningLoop: Bool { weft_current_runtime() == loopAddress }
    @exclusivity(unchecked) private(set) var handle: UnsafeMutablePointer<uv_udp_t>?

    // Inbound.
    /// Receiving stops while this many datagrams wait unreceived.
    @exclusivity(unchecked) var receiveQueueLimit: Int
    /// The receive buffer's length: longer datagrams are truncated to it.
    let receiveBufferLength: Int
    /// Queued datagrams' bytes, back to back from the start (`arenaCapacity`
    /// bytes), then a spare receive buffer (`receiveBufferLength` bytes).
    /// Made at the first receive; freed in `close()`.
    @exclusivity(unchecked) private var arena: UnsafeMutableRawPointer?
    /// The arena's length before the spare buffer: twice the receive buffer,
    /// at least 16 KiB, so that a burst of small datagrams fits.
    private let arenaCapacity: Int
    /// Bytes of the arena in use by queued datagrams; 0 when the queue is empty.
    @exclusivity(unchecked) private var arenaUsed = 0
    private let received = RingBuffer<Received>(capacity: 16)
    /// The bytes of the queued datagrams that are `isOverflow`, in order.
    /// Made at the first such datagram.
    @exclusivity(unchecked) private var overflows: RingBuffer<[UInt8]>?
    /// The connected peer, as the kernel reports senders (nil: not
    /// connected). Datagrams from anyone else, which the kernel had queued
    /// before the connect, are dropped.
    @exclusivity(unchecked) private var peer: SocketAddress?
    /// An error the socket reported (e.g. `ECONNREFUSED` on a connected
    /// socket), for the next receiver; reported once.
    @exclusivity(unchecked) private var receiveError: WeftError?
    /// Whether `uv_udp_recv_start` is in force.
    @exclusivity(unchecked) private(set) var isReceiving = false
    /// The tasks waiting in a receive.
    @exclusivity(unchecked) var receivers = WaitingWakers()

    // Outbound.
    /// Senders wait while this many bytes are queued in libuv.
    @exclusivity(unchecked) var sendQueueLimit: Int
    /// Bytes of the sends queued (in libuv or waiting for it) and not yet
    /// completed (an empty datagram counts one: see ``charge(_:)``). Above 0
    /// exactly while libuv holds one of them: the first queued goes to libuv,
    /// and each completion hands it the next.
    @exclusivity(unchecked) private(set) var queuedSendBytes = 0
    /// The queued sends libuv is not holding yet, in order, each with its
    /// destination (nil: the connected peer).
    private let waitingForLibuv = RingBuffer<(request: DatagramSendRequest, address: SocketAddress?)>(capacity: 4)
    /// The tasks waiting for room in the send queue.
    @exclusivity(unchecked) var senders = WaitingWakers()
    /// A test hook: skip `uv_udp_try_send`, as if the kernel always said
    /// `EAGAIN`, so the queued path runs on loopback (where it never does).
    @exclusivity(unchecked) var queuesEverySend = false
    /// The address bound when it was bound to port 0, with the port the
    /// system chose: Linux unbinds a port it chose when the socket
    /// disconnects, and ``connect(to:operation:)`` binds it again.
    @exclusivity(unchecked) private var chosenPortAddress: SocketAddress?

    init(loop: EventLoop, receiveBufferLength: Int, receiveQueueLimit: Int, sendQueueLimit: Int) throws(WeftError) {
        self.loop = loop
        loopAddress = Unmanaged.passUnretained(loop).toOpaque()
        self.receiveBufferLength = receiveBufferLength
        arenaCapacity = max(2 * receiveBufferLength, 16 * 1024)
        self.receiveQueueLimit = receiveQueueLimit
        self.sendQueueLimit = sendQueueLimit
        var error: Int32 = 0
        guard let handle = weft_udp_new(loop.uvLoop, &error) else {
            throw WeftError(uvCode: error, operation: "uv_udp_init")
        }
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        self.handle = handle
    }

    deinit {
        close()
    }

    /// Whether the handle is closed: on the loop thread only.
    var isClosed: Bool { handle == nil }

    /// Set by `close()` as `handle` goes nil, never cleared.
    private let closedFlag = Atomic<Bool>(false)

    /// Whether the handle is closed, on any thread (the public `isClosed`):
    /// elsewhere than the loop thread it turns true once the loop has closed
    /// the handle, so after a `close()` handed to the loop, not at once.
    var isClosedOnAnyThread: Bool { closedFlag.load(ordering: .acquiring) }

    /// Datagrams received and not yet taken by a receiver.
    var queuedDatagramCount: Int { received.count }

    func closedError(_ operation: String) -> WeftError {
        WeftError(.closed, operation: operation)
    }

    /// Creates a socket bound to `address` with `options` and adopts it.
    func bind(_ address: SocketAddress, options: SocketOptions) throws(WeftError) {
        let operation = "bind udp \(address)"
        guard let handle else { throw closedError(operation) }
        let socket = try address.withSockAddr { pointer in
            Result { () throws(WeftError) in
                try bindSocket(pointer, length: address.sockAddrLength, type: Int32(SOCK_DGRAM.rawValue),
                               options: options, listening: false, operation: operation)
            }
        }.get()
        let opened = uv_udp_open(handle, socket)
        if opened < 0 {
            weft_close_descriptor(socket)
            throw WeftError(uvCode: opened, operation: "\(operation) (uv_udp_open)")
        }
        // uv_udp_open sets SO_REUSEADDR on the socket it adopts; without
        // `reuseAddress` another socket could then bind this address too.
        if !options.reuseAddress {
            try check(weft_socket_set_reuse_address(socket, 0), "\(operation) (setsockopt SO_REUSEADDR)")
        }
        // Not yet connected, the socket's own address is the one bound, the port chosen.
        if address.port == 0 { chosenPortAddress = try self.address(peer: false) }
    }

    /// Closes the handle (if open), frees the receive buffer and the queue,
    /// and wakes every waiting task so it sees the closed socket.
    func close() {
        guard let handle else { return }
        self.handle = nil
        closedFlag.store(true, ordering: .releasing)
        isReceiving = false
        weft_close_and_free(weft_udp_handle(handle))
        arena?.deallocate()
        arena = nil
        while received.popFirst() != nil {}
        overflows = nil
        arenaUsed = 0
        // The sends libuv never held fail as those it held do (ECANCELED).
        while let (request, _) = waitingForLibuv.popFirst() { failWaiting(request, status: UV_ECANCELED.rawValue) }
        receivers.wakeAll()
        senders.wakeAll()
    }

    // MARK: - Receiving

    /// The next datagram, handed to `take` with its bytes (valid only during
    /// the call): ready with what `take` returns, or with the socket's error.
    @inline(__always)
    func pollReceive<T>(
        _ context: inout Context, _ take: (Received, UnsafeRawBufferPointer) -> T
    ) -> Poll<Result<T, WeftError>> {
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        guard let handle else { return .ready(.failure(closedError("receive"))) }
        if !received.isEmpty { return .ready(.success(popFirst(take))) }
        if let error = receiveError.take() { return .ready(.failure(error)) }
        if let error = startReceiving(handle) { return .ready(.failure(error)) }
        receivers.register(context.waker)?.wake()
        return Budget.refundingIfPending(.pending)
    }

    /// The async receive's fast path: the next queued datagram handed to
    /// `take`, if one waits and the running task's budget allows, without a
    /// future or an await; nil otherwise (the caller then awaits the poll
    /// future, which waits, yields or fails). Loop thread only.
    @inline(__always)
    func takeQueued<T>(_ take: (Received, UnsafeRawBufferPointer) -> T) -> T? {
        guard handle != nil, !received.isEmpty, Budget.consume() else { return nil }
        return popFirst(take)
    }

    /// Pops the first datagram of a non-empty queue into `take`; the arena
    /// starts over once the queue is empty.
    @inline(__always)
    private func popFirst<T>(_ take: (Received, UnsafeRawBufferPointer) -> T) -> T {
        let datagram = received.popFirst()!
        let taken: T
        if datagram.isOverflow {
            taken = overflows!.popFirst()!.withUnsafeBytes { take(datagram, $0) }
        } else {
            taken = take(datagram, UnsafeRawBufferPointer(start: arena! + datagram.offset, count: datagram.count))
        }
        if received.isEmpty { arenaUsed = 0 }
        return taken
    }

    /// Starts receiving if it is not on; the error if libuv refuses.
    private func startReceiving(_ handle: UnsafeMutablePointer<uv_udp_t>) -> WeftError? {
        if isReceiving { return nil }
        if arena == nil { arena = .allocate(byteCount: arenaCapacity + receiveBufferLength, alignment: 16) }
        // Both callbacks reach the endpoint unretained: they run per datagram,
        // and `didReceive` wakes the receivers last (see `withUnretainedHandleOwner`).
        let result = uv_udp_recv_start(handle, { handle, _, buffer in
            buffer!.pointee = withUnretainedHandleOwner(handle, as: DatagramEndpoint.self) { $0.nextReceiveBuffer() }
                ?? uv_buf_t(base: nil, len: 0)
        }, { handle, count, buffer, sender, flags in
            withUnretainedHandleOwner(handle, as: DatagramEndpoint.self) {
                $0.didReceive(count: count, into: buffer?.pointee.base, sender: sender, flags: flags)
            }
        })
        if result < 0 { return WeftError(uvCode: result, operation: "receive") }
        isReceiving = true
        return nil
    }

    /// Where libuv receives the next datagram: the arena's free tail if a
    /// whole receive buffer fits there, else the spare buffer after it.
    private func nextReceiveBuffer() -> uv_buf_t {
        guard let arena else { return uv_buf_t(base: nil, len: 0) }
        let offset = arenaUsed + receiveBufferLength <= arenaCapacity ? arenaUsed : arenaCapacity
        return uv_buf_t(base: (arena + offset).assumingMemoryBound(to: CChar.self), len: receiveBufferLength)
    }

    /// The receive callback: keep the datagram (where it landed in the arena,
    /// or copied out of the spare buffer), stop at the queue's limit, wake the
    /// receivers, last: letting go of a stale waker can free this endpoint
    /// (``withUnretainedHandleOwner(_:as:_:)``).
    private func didReceive(count: Int, into base: UnsafeMutablePointer<CChar>?, sender: UnsafePointer<sockaddr>?, flags: UInt32) {
        if count < 0 {
            receiveError = WeftError(uvCode: Int32(count), operation: "receive")
        } else {
            guard let sender, let arena, let base else { return }  // nothing to read (EAGAIN)
            if let peer, SocketAddress(sender) != peer { return }  // queued before the connect
            let offset = UnsafeMutableRawPointer(base) - arena
            let isTruncated = flags & UInt32(UV_UDP_PARTIAL.rawValue) != 0
            if offset == arenaUsed && offset < arenaCapacity {
                arenaUsed += count
                received.append(Received(offset: offset, count: count, isOverflow: false,
                                         sender: SocketAddress(sender), isTruncated: isTruncated))
            } else {
                if overflows == nil { overflows = RingBuffer(capacity: 16) }
                overflows!.append([UInt8](UnsafeRawBufferPointer(start: base, count: count)))
                received.append(Received(offset: 0, count: count, isOverflow: true,
                                         sender: SocketAddress(sender), isTruncated: isTruncated))
            }
            if received.count >= receiveQueueLimit { stopReceiving() }
        }
        receivers.wakeAll()
    }

    /// Drops the queued datagrams whose sender is not `peer` (in order, the
    /// others kept where they are).
    private func dropQueued(notFrom peer: SocketAddress) {
        for _ in 0..<received.count {
            let datagram = received.popFirst()!
            let overflow = datagram.isOverflow ? overflows!.popFirst()! : nil
            guard datagram.sender == peer else { continue }
            received.append(datagram)
            if let overflow { overflows!.append(overflow) }
        }
        if received.isEmpty { arenaUsed = 0 }
    }

    private func stopReceiving() {
        if isReceiving, let handle { uv_udp_recv_stop(handle) }
        isReceiving = false
    }

    // MARK: - Sending

    /// Sends `bytes` to `address` (or, with `nil`, to the connected peer):
    /// ready once the kernel took the datagram or refused it. `inFlight` is
    /// the caller's slot for a send libuv queued.
    /// `operation` names it in errors (built only for one).
    /// `tryFirst: false` skips `uv_udp_try_send` (the caller just tried it:
    /// ``sendAtOnce(_:to:)`` said `EAGAIN`). A new send takes from the task's
    /// ``Budget``: a task whose sends the kernel keeps taking yields.
    func pollSend(
        _ context: inout Context, _ bytes: ArraySlice<UInt8>, to address: SocketAddress?, operation: @autoclosure () -> String,
        inFlight: inout DatagramSendRequest?, tryFirst: Bool = true
    ) -> Poll<Result<Void, WeftError>> {
        if let request = inFlight {
            guard let status = request.status else {
                request.waiting.register(context.waker)?.wake()
                return .pending
            }
            inFlight = nil
            if status == UV_ECANCELED.rawValue { return .ready(.failure(closedError(operation()))) }
            return .ready(status < 0 ? .failure(WeftError(uvCode: status, operation: operation())) : .success(()))
        }
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        guard let handle else { return .ready(.failure(closedError(operation()))) }
        guard bytes.count <= Self.maximumPayload else {
            return .ready(.failure(WeftError(.invalidArgument, operation: operation(),
                                             detail: "\(bytes.count) bytes; a UDP datagram holds at most \(Self.maximumPayload)")))
        }
        if tryFirst && queuedSendBytes == 0 && !queuesEverySend {
            let result = trySend(handle, bytes, to: address)
            if result >= 0 { return .ready(.success(())) }
            if result != UV_EAGAIN.rawValue { return .ready(.failure(WeftError(uvCode: result, operation: operation()))) }
        }
        if queuedSendBytes > 0 && queuedSendBytes + Self.charge(bytes.count) > sendQueueLimit {
            senders.register(context.waker)?.wake()
            return Budget.refundingIfPending(.pending)
        }
        let request = bytes.withUnsafeBytes { DatagramSendRequest(endpoint: self, copying: $0) }
        if queuedSendBytes > 0 {
            waitingForLibuv.append((request, address))
        } else {
            let result = submit(request, to: address, handle)
            if result < 0 {
                request.abandon()
                return .ready(.failure(WeftError(uvCode: result, operation: operation())))
            }
        }
        queuedSendBytes += Self.charge(request.bufferCount)
        inFlight = request
        request.waiting.register(context.waker)?.wake()
        return Budget.refundingIfPending(.pending)
    }

    /// What ``sendAtOnce(_:to:)`` did.
    enum SentAtOnce {
        /// The kernel took the datagram.
        case sent
        /// The kernel refused it with this `uv_udp_try_send` error.
        case failed(Int32)
        /// The kernel's buffer is full (`EAGAIN`): the send must be queued.
        case mustQueue
    }

    /// The async send's fast path: `uv_udp_try_send` right away, without a
    /// future or an await, when nothing is queued before it; nil when it did
    /// not try (closed, too long, sends queued, the task's budget spent: the
    /// poll future then says what happens). Loop thread only.
    @inline(__always)
    func sendAtOnce(_ bytes: ArraySlice<UInt8>, to address: SocketAddress?) -> SentAtOnce? {
        guard let handle, queuedSendBytes == 0, !queuesEverySend, bytes.count <= Self.maximumPayload,
              Budget.consume() else { return nil }
        let result = trySend(handle, bytes, to: address)
        if result >= 0 { return .sent }
        return result == UV_EAGAIN.rawValue ? .mustQueue : .failed(result)
    }

    @inline(__always)
    private func trySend(_ handle: UnsafeMutablePointer<uv_udp_t>, _ bytes: ArraySlice<UInt8>, to address: SocketAddress?) -> Int32 {
        bytes.withUnsafeBytes { bytes in
            var buffer = uv_buf_t(base: UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: CChar.self)),
                                  len: bytes.count)
            return withSockAddr(address) { uv_udp_try_send(handle, &buffer, 1, $0) }
        }
    }

    /// Hands `request` to libuv; libuv's error if it refused it at once.
    private func submit(_ request: DatagramSendRequest, to address: SocketAddress?, _ handle: UnsafeMutablePointer<uv_udp_t>) -> Int32 {
        var buffer = uv_buf_t(base: request.buffer?.assumingMemoryBound(to: CChar.self), len: request.bufferCount)
        return withSockAddr(address) {
            uv_udp_send(request.request, handle, &buffer, 1, $0) { request, status in
                let request = DatagramSendRequest.finish(request!)
                request.endpoint.didSend(count: request.bufferCount)
                request.complete(status: status)
            }
        }
    }

    /// Fails a queued send libuv never held with `status`.
    private func failWaiting(_ request: DatagramSendRequest, status: Int32) {
        queuedSendBytes -= Self.charge(request.bufferCount)
        request.complete(status: status)
        request.abandon()
    }

    /// The send libuv held completed: hands it the next waiting one (one it
    /// refuses at once fails with that error).
    private func didSend(count: Int) {
        queuedSendBytes -= Self.charge(count)
        if let handle {
            while let (request, address) = waitingForLibuv.popFirst() {
                let result = submit(request, to: address, handle)
                if result >= 0 { break }
                failWaiting(request, status: result)
            }
        }
        senders.wakeAll()
    }

    /// What a queued datagram of `count` bytes counts against the send
    /// queue's limit: its bytes, and an empty one a byte, so that empty
    /// datagrams too wait for room, and `queuedSendBytes` is 0 only when
    /// nothing is queued (a send that tries the kernel first would otherwise
    /// overtake a queued empty datagram).
    @inline(__always)
    private static func charge(_ count: Int) -> Int { max(count, 1) }

    private func withSockAddr<R>(_ address: SocketAddress?, _ body: (UnsafePointer<sockaddr>?) -> R) -> R {
        guard let address else { return body(nil) }
        return address.withSockAddr { body($0) }
    }

    // MARK: - Options and addresses

    /// Runs a libuv option call on the open handle.
    func set(_ operation: String, _ call: (UnsafeMutablePointer<uv_udp_t>) -> Int32) throws(WeftError) {
        guard let handle else { throw closedError(operation) }
        try check(call(handle), operation)
    }

    /// An IP option of the socket, set by ``setIPOption(_:to:operation:)``.
    enum IPOption {
        /// `IP_TTL` (and `IPV6_UNICAST_HOPS`).
        case timeToLive
        /// `IP_MULTICAST_TTL` (and `IPV6_MULTICAST_HOPS`).
        case multicastTimeToLive
        /// `IP_MULTICAST_LOOP` (and `IPV6_MULTICAST_LOOP`).
        case multicastLoopback
    }

    /// Sets an IP option by the socket's family, both levels on an IPv6
    /// socket (see `weft_udp_set_ip_option`): libuv's setters would set the
    /// IPv4 option only, on a socket libuv did not bind itself.
    func setIPOption(_ option: IPOption, to value: Int32, operation: String) throws(WeftError) {
        let descriptor = try descriptor(operation: operation)
        let cOption = switch option {
        case .timeToLive: WEFT_UDP_TTL
        case .multicastTimeToLive: WEFT_UDP_MULTICAST_TTL
        case .multicastLoopback: WEFT_UDP_MULTICAST_LOOP
        }
        try checkSettingOptions(operation) { weft_udp_set_ip_option(descriptor, cOption, value, &$0) }
    }

    /// The socket's descriptor; `.closed` once closed.
    private func descriptor(operation: String) throws(WeftError) -> Int32 {
        guard let handle else { throw closedError(operation) }
        var descriptor: uv_os_fd_t = -1
        try check(uv_fileno(weft_udp_handle(handle), &descriptor), "\(operation) (uv_fileno)")
        return descriptor
    }

    /// Connects (a peer address) or disconnects (`nil`). An error the old
    /// peer caused and no receive has taken yet (`ECONNREFUSED`) goes, from
    /// Weft and from the kernel, which keeps it until a receive or a send
    /// takes it: the first send to the new peer failed with it. Datagrams
    /// queued from anyone but the new peer go too. Refused (`EBUSY`) while
    /// sends wait in libuv's queue: those without an address would go to
    /// whoever is the peer when the kernel takes them, the new one.
    func connect(to address: SocketAddress?, operation: String) throws(WeftError) {
        // Closed first: a socket closed while libuv held a send still counts
        // it until the close's callback, and was refused as busy.
        guard handle != nil else { throw closedError(operation) }
        guard queuedSendBytes == 0 else {
            throw WeftError(.libuv(code: UV_EBUSY.rawValue), operation: operation,
                            detail: "sends are still queued for the current peer; await them first")
        }
        try set(operation) { handle in withSockAddr(address) { uv_udp_connect(handle, $0) } }
        receiveError = nil
        peer = address == nil ? nil : try self.address(peer: true)
        if let peer { dropQueued(notFrom: peer) }
        let descriptor = try descriptor(operation: operation)
        _ = weft_socket_take_error(descriptor)
        // Disconnected, a socket bound to port 0 lost that port: bind it again.
        if address == nil, let bound = chosenPortAddress, try self.address(peer: false).port == 0 {
            let result = bound.withSockAddr { weft_socket_bind_existing(descriptor, $0, Int32(bound.sockAddrLength)) }
            try check(result, "\(operation) (bind \(bound))")
        }
    }

    func address(peer: Bool) throws(WeftError) -> SocketAddress {
        let operation = peer ? "peerAddress" : "localAddress"
        guard let handle else { throw closedError(operation) }
        return try socketAddress(operation: operation) { address, length in
            peer ? uv_udp_getpeername(handle, address, length) : uv_udp_getsockname(handle, address, length)
        }
    }

    /// `SO_RCVBUF` (`receive`) or `SO_SNDBUF`: sets it when `value` > 0, and
    /// returns the size in force.
    func bufferSize(receive: Bool, setting value: Int32) throws(WeftError) -> Int {
        let operation = receive ? "receiveBufferSize" : "sendBufferSize"
        guard let handle else { throw closedError(operation) }
        var size = value
        let result = receive ? uv_recv_buffer_size(weft_udp_handle(handle), &size) : uv_send_buffer_size(weft_udp_handle(handle), &size)
        try check(result, operation)
        if value > 0 {
            size = 0
            try check(receive ? uv_recv_buffer_size(weft_udp_handle(handle), &size) : uv_send_buffer_size(weft_udp_handle(handle), &size), operation)
        }
        return Int(size)
    }
}

/// A send queued with `uv_udp_send`: retains its endpoint and owns a copy of
/// the datagram until the callback (see ``RequestOperation``).
final class DatagramSendRequest: RequestOperation<uv_udp_send_t> {
    let endpoint: DatagramEndpoint
    let buffer: UnsafeMutableRawPointer?
    let bufferCount: Int

    init(endpoint: DatagramEndpoint, copying bytes: UnsafeRawBufferPointer) {
        self.endpoint = endpoint
        bufferCount = bytes.count
        if let base = bytes.baseAddress, !bytes.isEmpty {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 1)
            buffer.copyMemory(from: base, byteCount: bytes.count)
            self.buffer = buffer
        } else {
            buffer = nil
        }
        super.init()
    }

    deinit {
        buffer?.deallocate()
    }
}
