import CLibUV

/// Connects a TCP socket. See ``TCPStream/connect(to:)``.
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

    init(address: SocketAddress) {
        self.address = address
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>> {
        let operationName = "connect \(address)"
        if operation == nil {
            guard let loop = EventLoop.current else { preconditionFailure("connect polled outside a Weft runtime") }
            let connection: TCPConnection
            do { connection = try TCPConnection(loop: loop) } catch { return .ready(.failure(error)) }
            do {
                operation = try connection.startConnect(to: address, operation: operationName)
            } catch {
                connection.close()
                return .ready(.failure(error))
            }
            stream = TCPStream(connection: connection)
        }
        guard let status = operation!.status else {
            operation!.waiting.register(context.waker)
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

/// Resolves a host name, then connects to its addresses in order until one
/// accepts. See ``TCPStream/connect(host:port:)``.
///
/// **Cancellation:** dropping it cancels the lookup or closes the socket.
public struct ConnectByName: Future {
    let host: String
    let port: Int
    var lookup: Resolve?
    var candidates: [SocketAddress] = []
    var attempt: Connect?
    var lastError: WeftError?

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<TCPStream, WeftError>> {
        if attempt == nil && candidates.isEmpty {
            if lookup == nil { lookup = resolve(host: host, port: port) }
            switch lookup!.poll(&context) {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success(let addresses)):
                candidates = addresses.reversed()
                if candidates.isEmpty {
                    return .ready(.failure(WeftError(.invalidArgument, operation: "connect \(host):\(port)",
                                                     detail: "no address found")))
                }
            }
        }
        while true {
            if attempt == nil {
                guard let next = candidates.popLast() else { return .ready(.failure(lastError!)) }
                attempt = TCPStream.connect(to: next)
            }
            switch attempt!.poll(&context) {
            case .pending: return .pending
            case .ready(.success(let stream)): return .ready(.success(stream))
            case .ready(.failure(let error)):
                lastError = error
                attempt = nil
            }
        }
    }
}
