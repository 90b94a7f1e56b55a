import CLibUV

/// Connects a TCP socket. See ``TCPStream/connectFuture(to:)``.
///
/// The socket is created at the first poll (futures are lazy), on the runtime
/// polling it. Errors carry the address: `connect 127.0.0.1:9: ECONNREFUSED
/// (connection refused)`.
///
/// **Cancellation:** dropping it mid-connect closes the socket; nothing leaks.
public struct Connect: Future {
    let address: SocketAddress
    var stream: TCPStream?
    var operation: StreamRequest<uv_connect_t>?
    /// Set when it yields its result: polled again, it fails (it would
    /// connect a second socket).
    var isDone = false

    init(address: SocketAddress) {
        self.address = address
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>> {
        if isDone { return .ready(.failure(.polledAgain("connect \(address)"))) }
        return pollConnect(&context).markingDone(&isDone)
    }

    private mutating func pollConnect(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>> {
        let operationName = "connect \(address)"
        if operation == nil {
            guard let loop = EventLoop.current else { return .ready(.failure(.outsideRuntime(operationName))) }
            let connection: StreamConnection
            do { connection = try StreamConnection(loop: loop) } catch { return .ready(.failure(error)) }
            do {
                operation = try connection.startConnect(to: address, operation: operationName)
            } catch {
                connection.close()
                return .ready(.failure(error))
            }
            stream = TCPStream(connection: connection)
        }
        if let error = stream!.connection.wrongThread(operationName) { return .ready(.failure(error)) }
        guard let status = operation!.status else {
            operation!.waiting.register(context.waker)?.wake()
            return .pending
        }
        let stream = self.stream.take()!
        stream.connection.connectOperation = nil
        if status < 0 {
            stream.close()
            return .ready(.failure(WeftError(uvCode: status, operation: operationName)))
        }
        return .ready(.success(stream))
    }
}

/// Connects to the first of several addresses that accepts, by Happy
/// Eyeballs (RFC 8305): the addresses are tried with the families alternating,
/// IPv6 first (Weft's choice: the RFC starts with the family of the first
/// address `getaddrinfo` sorted, which `/etc/gai.conf` may make IPv4, and
/// Weft does not follow it there); the next attempt starts when the current one fails or after
/// ``attemptDelay`` without an answer (one that never answers, a black hole,
/// costs 250 ms, not a connect timeout), and the first to connect wins. The
/// attempts still in flight then are dropped, which closes their sockets.
/// When every address failed, fails with the first error that shows a host
/// was reached (refused, reset), else with the last attempt's: a refusal
/// says more than the unreachable network or the timeout of an address
/// tried after it. See ``TCPStream/connect(toAny:)``.
///
/// **Cancellation:** dropping it closes every socket it opened.
public struct ConnectToAny: Future {
    /// How long an attempt has before the next one starts beside it (RFC 8305's
    /// recommended "Connection Attempt Delay").
    public static let attemptDelay = Duration.milliseconds(250)

    /// The addresses not yet tried, the next last.
    var waiting: [SocketAddress]
    var attempts: [Connect] = []
    var nextAttempt: Sleep?
    /// The error to fail with if every address fails: the first refusal or
    /// reset, else the latest error.
    var failure: WeftError?
    /// Set when it yields its result: polled again, it fails (it went on
    /// with the addresses left, connecting again).
    var isDone = false
    let operation: String

    init(_ addresses: [SocketAddress], operation: String) {
        waiting = Self.interleaved(addresses).reversed()
        self.operation = operation
    }

    /// Whether `error` came from a host that answered (it refused or reset
    /// the connection): the failure worth reporting once every address failed.
    static func reachedAHost(_ error: WeftError?) -> Bool {
        error?.code == .connectionRefused || error?.code == .connectionReset
    }

    /// The addresses with the families alternating (RFC 8305, section 4), IPv6
    /// first (Weft's choice: the RFC starts with the first address's family),
    /// each family in its given order.
    static func interleaved(_ addresses: [SocketAddress]) -> [SocketAddress] {
        var ipv6 = addresses.filter { $0.family == .ipv6 }.makeIterator()
        var ipv4 = addresses.filter { $0.family == .ipv4 }.makeIterator()
        var ordered: [SocketAddress] = []
        while true {
            let next = (ipv6.next(), ipv4.next())
            if next.0 == nil && next.1 == nil { return ordered }
            if let address = next.0 { ordered.append(address) }
            if let address = next.1 { ordered.append(address) }
        }
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>> {
        if isDone {
            return .ready(.failure(.polledAgain(operation)))
        }
        return pollAttempts(&context).markingDone(&isDone)
    }

    private mutating func pollAttempts(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>> {
        if attempts.isEmpty && waiting.isEmpty && failure == nil {
            return .ready(.failure(WeftError(.invalidArgument, operation: operation, detail: "no address to connect to")))
        }
        while true {
            var failed = false
            var index = 0
            while index < attempts.count {
                switch attempts[index].poll(&context) {
                case .pending:
                    index += 1
                case .ready(.success(let stream)):
                    attempts.removeAll()  // the losers' sockets close
                    nextAttempt = nil
                    return .ready(.success(stream))
                case .ready(.failure(let error)) where error.kind == .wrongThread:
                    // Polled on another loop than the one its attempts run on:
                    // that is the failure, not the address's (the next attempt
                    // started here went on on this loop, or a connection made
                    // was dropped behind a refusal).
                    attempts.removeAll()
                    nextAttempt = nil
                    return .ready(.failure(error))
                case .ready(.failure(let error)):
                    if !Self.reachedAHost(failure) { failure = error }
                    attempts.remove(at: index)
                    failed = true
                }
            }
            if waiting.isEmpty {
                return attempts.isEmpty ? .ready(.failure(failure!)) : .pending
            }
            // Start the next attempt now when none is in flight or one just
            // failed; else when the delay runs out.
            if attempts.isEmpty || failed {
                startNext()
                continue
            }
            if nextAttempt == nil { nextAttempt = sleepFuture(for: Self.attemptDelay) }
            guard case .ready = nextAttempt!.poll(&context) else { return .pending }
            startNext()
        }
    }

    private mutating func startNext() {
        attempts.append(TCPStream.connectFuture(to: waiting.removeLast()))
        nextAttempt = nil
    }
}

/// Resolves a host name, then connects to its addresses by Happy Eyeballs
/// (``ConnectToAny``). See ``TCPStream/connectFuture(host:port:)``.
///
/// **Cancellation:** dropping it cancels the lookup or closes the sockets.
public struct ConnectByName: Future {
    let host: String
    let port: Int
    var lookup: Resolve?
    var connecting: ConnectToAny?

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    private var operation: String { "connect \(host):\(port)" }

    public mutating func poll(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>> {
        if connecting == nil, lookup == nil, let numeric = try? SocketAddress(host: host, port: port) {
            // A numeric address needs no lookup (nor a thread of the pool,
            // which long blocking work may hold), as a bind by name.
            connecting = ConnectToAny([numeric], operation: operation)
        }
        if connecting == nil {
            if lookup == nil { lookup = resolveFuture(host: host, port: port) }
            switch lookup!.poll(&context) {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error.within(operation)))
            case .ready(.success(let addresses)):
                lookup = nil
                if addresses.isEmpty {
                    return .ready(.failure(WeftError(.invalidArgument, operation: operation, detail: "no address found")))
                }
                connecting = ConnectToAny(addresses, operation: operation)
            }
        }
        // A failure (every address failed: see ConnectToAny) leads with the host asked for.
        return connecting!.poll(&context).map { $0.mapError { $0.within(operation) } }
    }
}
