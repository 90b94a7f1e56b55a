import CLibUV

/// Resolves a host name with `uv_getaddrinfo` (on libuv's thread pool).
/// See ``resolveFuture(host:port:)`` (and the async ``resolve(host:port:)``).
///
/// A port outside 0...65535 or a host containing a NUL character fails with
/// `.invalidArgument` at the first poll.
///
/// **Cancellation:** dropping it cancels the lookup (`uv_cancel`) if it has not
/// started, and its waker is never called afterwards.
public struct Resolve: Future {
    let host: String
    let port: Int
    /// The lookup in flight, once polled; dropping it cancels the lookup.
    var lookup: SubmittedRequest<uv_getaddrinfo_t, NameLookup>?

    public mutating func poll(_ context: inout Context) -> Poll<Result<[SocketAddress], WeftError>> {
        let operation = "resolve \(host):\(port)"
        if lookup == nil {
            // getaddrinfo would take the port modulo 65536 and stop the host at
            // a NUL, silently resolving some other address.
            guard (0...65535).contains(port) else {
                return .ready(.failure(WeftError(.invalidArgument, operation: operation,
                                                 detail: "port \(port) is not in 0...65535")))
            }
            guard !host.utf8.contains(0) else {
                return .ready(.failure(WeftError(.invalidArgument, operation: operation,
                                                 detail: "the host contains a NUL character")))
            }
            guard let loop = EventLoop.current else { return .ready(.failure(.outsideRuntime(operation))) }
            do {
                lookup = SubmittedRequest(try NameLookup.start(host: host, port: port, on: loop), on: loop)
            } catch {
                return .ready(.failure(WeftError(error.kind, operation: operation, detail: error.detail)))
            }
        }
        if let error = lookup!.wrongThread(operation) { return .ready(.failure(error)) }
        let request = lookup!.operation
        guard let result = request.result else {
            request.waiting.register(context.waker)?.wake()
            return .pending
        }
        return .ready(result.mapError { WeftError($0.kind, operation: operation, detail: $0.detail) })
    }
}

/// A future of the addresses `host` resolves to (IPv4 and IPv6), with `port`.
public func resolveFuture(host: String, port: Int) -> Resolve {
    Resolve(host: host, port: port)
}
