import CLibUV
import CWeftSupport
import Synchronization

/// The owner of a listening socket, TCP or Unix domain, and of the `uv_poll_t`
/// that watches it (same lifetime rules as `StreamConnection`: the handle is
/// allocated apart, `data` unretained, freed in the close callback). Each
/// accepted socket becomes a `StreamConnection` of the listener's kind.
/// Confined to the loop thread.
///
/// Weft accepts by itself rather than through `uv_listen`, because libuv 1.44
/// handles running out of descriptors without telling anyone (below). Each time
/// the socket is readable, every waiting connection is accepted into a bounded
/// queue that `accept()` futures take from. When the queue is full the watcher
/// stops until `pollAccept` makes room (backpressure: the rest wait in the
/// kernel's backlog). A listener served by `LoopGroup.serve` has a
/// ``deliver(to:)`` sink instead: each connection goes to it as it is
/// accepted, and no task wakes to take it from the queue.
///
/// **Out of descriptors** (`EMFILE`/`ENFILE` on accept): the waiting
/// connections cannot be accepted, and the watcher would report them again at
/// once, for ever. As libuv does, the acceptor then closes the descriptor the
/// loop holds in reserve (`weft_loop_release_reserve`), accepts each waiting
/// connection and closes it (its client sees a close, not a hang), and takes
/// the reserve again. Unlike libuv it counts each time and each connection
/// shed, in the loop's statistics and the listener's accept errors. With no
/// reserve to close (another thread took the slot), it stops watching for
/// ``backOffMilliseconds`` instead of spinning.
///
/// **Other accept errors** are counted as accept errors too. One of the
/// connection the accept took (`EPROTO`, `ENETUNREACH` …) does not stop the
/// accepting; one of the listener's (`ENOMEM`, `ENOBUFS`, `EPERM` …), which
/// leaves the connections waiting, stops watching for the back-off as well.
final class StreamAcceptor: SocketOwner {
    let loop: EventLoop
    /// The kind of the connections it accepts.
    let kind: StreamConnection.Kind
    /// Names the listener in accept errors ("accept on 127.0.0.1:7000").
    private var name = "a closed listener"
    /// The address a TCP listener is bound to (with the real port when bound
    /// to 0), read once by `listen(on:options:)`; nil before that.
    private(set) var boundAddress: Result<SocketAddress, WeftError>?
    /// The socket file a Unix listener created, removed on close if it is
    /// still that file (device and inode).
    private var socketFile: (path: String, device: UInt64, inode: UInt64)?
    /// Buffer sizes and linger to set on each accepted Unix domain socket,
    /// which, unlike a TCP socket, does not inherit them from the listener;
    /// nil when the listener's options set none.
    private var acceptedSocketOptions: SocketOptions?
    /// The listening socket, -1 until `listen` and after `close`.
    private var socket: Int32 = -1
    private var watcher: UnsafeMutablePointer<uv_poll_t>?
    private var isWatching = false
    /// Restarts the watcher after a back-off; made on first need.
    private var backOffTimer: UnsafeMutablePointer<uv_timer_t>?
    /// Whether the back-off timer is running (libuv stops a one-shot timer
    /// before calling its callback).
    var isBackingOff: Bool {
        backOffTimer.map { uv_is_active(weft_timer_handle($0)) != 0 } ?? false
    }
    static let backOffMilliseconds: UInt64 = 100
    /// Connections accepted and not yet handed to an `accept()`.
    private let accepted = RingBuffer<StreamConnection>(capacity: 16)
    /// At most this many connections wait in `accepted`; with a sink, at most
    /// this many are accepted per readiness (the rest at the loop's next turn).
    static let acceptQueueLimit = 128
    /// Where each connection goes as it is accepted, instead of `accepted`.
    private var sink: ((StreamConnection) -> Void)?
    /// The tasks waiting in an accept. A connection (or the close) wakes them
    /// all: one takes the connection, the others find none and wait again.
    var acceptors = WaitingWakers()
    /// Failed accepts and the latest error: written on the loop, read by the
    /// listener's properties from any thread.
    private let acceptErrors = Mutex<(count: Int, latest: WeftError?)>((0, nil))
    var acceptErrorCount: Int { acceptErrors.withLock { $0.count } }
    var lastAcceptError: WeftError? { acceptErrors.withLock { $0.latest } }

    init(loop: EventLoop, kind: StreamConnection.Kind = .tcp) {
        self.loop = loop
        self.kind = kind
    }

    deinit {
        close()
    }

    /// Binds `address` with `options` (with `reusePort`, other sockets, on
    /// other loops or in other processes, may bind it too, and the kernel
    /// spreads the connections over them) and starts accepting.
    func listen(on address: SocketAddress, options: SocketOptions) throws(WeftError) {
        let operation = "bind \(address)"
        let socket = try address.withSockAddr { pointer in
            Result { () throws(WeftError) in
                try bindSocket(pointer, length: address.sockAddrLength, type: Int32(SOCK_STREAM.rawValue),
                               options: options, listening: true, operation: operation)
            }
        }.get()
        try watch(socket)
        let bound = Result { () throws(WeftError) in
            try socketAddress(operation: "localAddress") { weft_getsockname(socket, $0, $1) }
        }
        boundAddress = bound
        name = (try? bound.get()).map { "\($0)" } ?? "\(address)"
    }

    /// Fails with `EADDRINUSE` when a socket listens on `address` already.
    /// A listener bound with `SO_REUSEPORT` would join any group of such
    /// listeners of the same user on the address, another server's too, and
    /// take part of its connections; binding a socket without it (which does
    /// not listen and is closed at once) tells whether one is there first.
    static func checkNotListened(_ address: SocketAddress, operation: String) throws(WeftError) {
        let probe = try address.withSockAddr { pointer in
            Result { () throws(WeftError) in
                try bindSocket(pointer, length: address.sockAddrLength, type: Int32(SOCK_STREAM.rawValue),
                               options: SocketOptions(), listening: false, operation: operation)
            }
        }.get()
        weft_close(probe)
    }

    /// Binds the Unix domain socket `address` and starts accepting; a socket
    /// file it creates is removed again on close.
    func listen(unix address: UnixAddress, options: SocketOptions) throws(WeftError) {
        let operation = "bind \(address)"
        let socket = try address.withSockAddr(operation: operation) { (address, length) throws(WeftError) in
            try bindSocket(address, length: length, type: Int32(SOCK_STREAM.rawValue), options: options,
                           listening: true, operation: operation)
        }
        if case .path(let path) = address {
            var device: UInt64 = 0
            var inode: UInt64 = 0
            if weft_socket_file_identity(path, &device, &inode) == 0 {
                // Kept absolute: removed relative to the working directory at
                // the close, a file bound before a `chdir` was left behind.
                socketFile = (Self.absolute(path), device, inode)
            }
        }
        name = "\(address)"
        if options.configuresConnections { acceptedSocketOptions = options }
        try watch(socket)
    }

    /// `path` from the working directory, if it is relative (and the
    /// directory can be read; else `path` as it is).
    private static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/"), let directory = getcwd(nil, 0) else { return path }
        defer { free(directory) }
        return String(cString: directory) + "/" + path
    }

    /// Watches the listening `socket`, which it now owns, and starts accepting.
    private func watch(_ socket: Int32) throws(WeftError) {
        self.socket = socket
        var error: Int32 = 0
        guard let watcher = weft_poll_new(loop.uvLoop, socket, &error) else {
            throw WeftError(uvCode: error, operation: "uv_poll_init")
        }
        watcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        self.watcher = watcher
        _ = weft_loop_take_reserve(loop.uvLoop)
        try startWatching()
    }

    private func startWatching() throws(WeftError) {
        guard let watcher, !isWatching else { return }
        try check(uv_poll_start(watcher, Int32(UV_READABLE.rawValue)) { watcher, status, _ in
            handleOwner(watcher, as: StreamAcceptor.self)?.readable(status: status)
        }, "uv_poll_start")
        isWatching = true
    }

    private func stopWatching() {
        guard let watcher, isWatching else { return }
        uv_poll_stop(watcher)
        isWatching = false
    }

    private func readable(status: Int32) {
        if status < 0 {
            // An error on the socket (libuv reports POLLERR as UV_EBADF) and
            // libuv stopped the watcher: watch again after a back-off, or the
            // listener would never accept again.
            isWatching = false
            recordAcceptError(status)
            backOff()
            return
        }
        acceptWaitingConnections()
    }

    /// A test hook: what libuv does on `POLLERR` (stops the watcher, then
    /// calls back with `UV_EBADF`).
    func simulatePollError() {
        guard let watcher, isWatching else { return }
        uv_poll_stop(watcher)
        readable(status: UV_EBADF.rawValue)
    }

    /// A test hook: the next `count` accepts fail with `code`, a libuv error,
    /// without calling `accept4` (the kernel's `ENOMEM`, `ENOBUFS` or
    /// `EPROTO` cannot be provoked). Set on the loop thread.
    var simulatedAcceptFailures: (code: Int32, count: Int) = (0, 0)

    private func takeSimulatedAcceptFailure() -> Int32? {
        guard simulatedAcceptFailures.count > 0 else { return nil }
        simulatedAcceptFailures.count -= 1
        return simulatedAcceptFailures.code
    }

    /// Accepts every waiting connection, up to the queue's limit (with a
    /// sink, up to that many per call).
    private func acceptWaitingConnections() {
        let queued = accepted.count
        var taken = 0
        accepting: while socket >= 0 && accepted.count < Self.acceptQueueLimit && taken < Self.acceptQueueLimit {
            let result = takeSimulatedAcceptFailure() ?? weft_accept(socket)
            if result >= 0 {
                taken += 1
                do {
                    let connection = try adopt(result)
                    if let sink { sink(connection) } else { accepted.append(connection) }
                } catch {
                    // Named as the accept it failed ("accept on ADDRESS (uv_tcp_open)").
                    recordAcceptError(error.within(acceptOperation))
                }
                continue
            }
            switch result {
            case UV_EAGAIN.rawValue:
                break accepting
            case UV_ECONNABORTED.rawValue:
                continue  // the client gave up while waiting
            case UV_EMFILE.rawValue, UV_ENFILE.rawValue:
                shedWaitingConnections(result)
                break accepting
            case UV_EPROTO.rawValue, UV_ENETDOWN.rawValue, UV_ENOPROTOOPT.rawValue, UV_EHOSTDOWN.rawValue,
                 UV_ENONET.rawValue, UV_EHOSTUNREACH.rawValue, UV_ENOTSUP.rawValue, UV_ENETUNREACH.rawValue:
                // An error of the connection the accept took (accept(2): to be
                // treated as EAGAIN): the next one may be fine. Counted as
                // taken, so that one that took nothing cannot hold the loop.
                recordAcceptError(result)
                taken += 1
                continue
            default:
                // The listener's own trouble (ENOMEM, ENOBUFS, a security
                // policy's EPERM, checked before a connection is taken …): the
                // connections still wait, and the socket is readable again at
                // once; trying again at once would spin while it lasts.
                recordAcceptError(result)
                backOff()
                break accepting
            }
        }
        if accepted.count >= Self.acceptQueueLimit { stopWatching() }
        if accepted.count > queued { acceptors.wakeAll() }
    }

    /// A connection of the listener's kind for the accepted `descriptor`,
    /// which it now owns (and closes on failure), with ``acceptedSocketOptions`` set.
    private func adopt(_ descriptor: Int32) throws(WeftError) -> StreamConnection {
        if let options = acceptedSocketOptions {
            do {
                try configureSocket(descriptor, options, operation: "setOptions")
            } catch {
                weft_close_descriptor(descriptor)
                throw error
            }
        }
        return try StreamConnection.adopting(descriptor, loop: loop, kind: kind)
    }

    /// Out of descriptors: accepts and closes the waiting connections through
    /// the room the reserve makes, at most ``acceptQueueLimit`` tries per
    /// readiness (clients connecting as fast as it closes them would hold the
    /// loop for as long as they keep at it), then takes the reserve again.
    private func shedWaitingConnections(_ code: Int32) {
        loop.counters.acceptsOutOfDescriptors += 1
        loop.counters.lastOutOfDescriptors = wallClockNow()
        var shed = 0
        defer {
            loop.counters.connectionsShed += shed
            recordAcceptError(code, connectionsShed: shed)
        }
        if weft_loop_release_reserve(loop.uvLoop) {
            for _ in 0..<Self.acceptQueueLimit {
                let connection = weft_accept(socket)
                if connection >= 0 {
                    weft_close_descriptor(connection)
                    shed += 1
                } else if connection != UV_ECONNABORTED.rawValue {
                    break  // none left (EAGAIN), or the room was taken (EMFILE)
                }
            }
            if weft_loop_take_reserve(loop.uvLoop) { return }
        }
        backOff()
    }

    /// Stops watching for a while: without a reserve, the waiting connections
    /// can be neither accepted nor shed.
    private func backOff() {
        if backOffTimer == nil {
            var error: Int32 = 0
            guard let timer = weft_timer_new(loop.uvLoop, &error) else { return }  // keep watching
            timer.pointee.data = Unmanaged.passUnretained(self).toOpaque()
            backOffTimer = timer
        }
        stopWatching()
        uv_timer_start(backOffTimer!, { timer in
            guard let acceptor = handleOwner(timer, as: StreamAcceptor.self) else { return }
            _ = weft_loop_take_reserve(acceptor.loop.uvLoop)
            acceptor.resumeWatching()
        }, Self.backOffMilliseconds, 0)
    }

    /// Watches again, unless it watches, backs off, or the queue is full.
    private func resumeWatching() {
        guard !isWatching, !isBackingOff, accepted.count < Self.acceptQueueLimit else { return }
        do {
            try startWatching()
        } catch {
            recordAcceptError(error)
        }
    }

    private func recordAcceptError(_ code: Int32, connectionsShed: Int = 0) {
        recordAcceptError(WeftError(uvCode: code, operation: acceptOperation), connectionsShed: connectionsShed)
    }

    private func recordAcceptError(_ error: WeftError, connectionsShed: Int = 0) {
        acceptErrors.withLock { $0 = ($0.count + 1, error) }
        RuntimeEvents.report(.acceptFailed(error, connectionsShed: connectionsShed))
    }

    /// "accept on ADDRESS", naming the listener in its errors.
    private var acceptOperation: String { "accept on " + name }

    /// From now on, hands each connection to `sink` as it is accepted (on the
    /// loop thread, inside the loop's readiness callback) instead of queuing
    /// it for ``pollAccept(_:)``; connections already queued go to it first.
    /// Accept futures then wait until the listener closes. Loop thread only.
    func deliver(to sink: @escaping (StreamConnection) -> Void) {
        guard socket >= 0 else { return }  // closed: nothing more to deliver
        self.sink = sink
        while let connection = accepted.popFirst() { sink(connection) }
        resumeWatching()
    }

    /// Connections accepted and waiting for an accept future.
    var queuedCount: Int { accepted.count }

    /// ``pollAccept(_:)`` for a listener's stream of connections: the end
    /// (`nil`) once the listener is closed, instead of a `.closed` error.
    func pollNextAccepted(_ context: inout Context) -> Poll<Result<StreamConnection, WeftError>?> {
        switch pollAccept(&context) {
        case .pending: return .pending
        case .ready(.failure(let error)) where error.kind == .closed: return .ready(nil)
        case .ready(let result): return .ready(result)
        }
    }

    func pollAccept(_ context: inout Context) -> Poll<Result<StreamConnection, WeftError>> {
        if let error = wrongThread("accept") { return .ready(.failure(error)) }
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        guard socket >= 0 else { return .ready(.failure(WeftError(.closed, operation: "accept"))) }
        guard let client = accepted.popFirst() else {
            acceptors.register(context.waker)?.wake()
            return Budget.refundingIfPending(.pending)
        }
        resumeWatching()  // room again after backpressure
        return .ready(.success(client))
    }

    /// Whether the listening socket is closed (by ``close()`` or the loop's
    /// shutdown). Loop thread only.
    var isClosed: Bool { socket < 0 }

    func close() {
        if let watcher {
            self.watcher = nil
            isWatching = false
            weft_close_and_free(weft_poll_handle(watcher))
        }
        if let backOffTimer {
            self.backOffTimer = nil
            weft_close_and_free(weft_timer_handle(backOffTimer))
        }
        guard socket >= 0 else { return }
        weft_close_descriptor(socket)  // after its watcher left the OS poll
        socket = -1
        if let (path, device, inode) = socketFile.take() { weft_remove_socket_file(path, device, inode) }
        while let client = accepted.popFirst() { client.close() }
        sink = nil
        acceptors.wakeAll()
    }
}
