import CLibUV
import Glibc

/// Resolves a host name with `uv_getaddrinfo` (on libuv's thread pool).
/// See ``resolve(host:port:)``.
///
/// A port outside 0...65535 or a host containing a NUL character fails with
/// `.invalidArgument` at the first poll.
///
/// **Cancellation:** dropping it cancels the lookup (`uv_cancel`) if it has not
/// started, and its waker is never called afterwards.
public struct Resolve: Future {
    let host: String
    let port: Int
    var lookup: Lookup?

    /// Owns the request while the future lives; its deinit forgets the waker and
    /// cancels the request.
    final class Lookup {
        let request: UnsafeMutablePointer<uv_getaddrinfo_t>
        var result: Result<[SocketAddress], WeftError>?
        var waker: Waker?
        var isPending = true

        init() {
            request = .allocate(capacity: 1)
        }

        deinit {
            waker = nil
            if isPending {
                // The callback still runs (with UV_EAI_CANCELED) and frees the request.
                UnsafeMutableRawPointer(request).assumingMemoryBound(to: uv_req_t.self).pointee.data = nil
                _ = UnsafeMutableRawPointer(request).withMemoryRebound(to: uv_req_t.self, capacity: 1) { uv_cancel($0) }
            } else {
                request.deallocate()
            }
        }
    }

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
            guard let loop = LoopCore.current else { preconditionFailure("resolve polled outside a Weft runtime") }
            let lookup = Lookup()
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            UnsafeMutableRawPointer(lookup.request).assumingMemoryBound(to: uv_req_t.self).pointee.data =
                Unmanaged.passUnretained(lookup).toOpaque()
            let result = uv_getaddrinfo(loop.loop, lookup.request, { request, status, info in
                defer { uv_freeaddrinfo(info) }
                guard let data = UnsafeMutableRawPointer(request!).assumingMemoryBound(to: uv_req_t.self).pointee.data else {
                    request!.deallocate()  // the future was dropped
                    return
                }
                let lookup = Unmanaged<Lookup>.fromOpaque(data).takeUnretainedValue()
                lookup.isPending = false
                if status < 0 {
                    lookup.result = .failure(WeftError(uvCode: status, operation: "getaddrinfo"))
                } else {
                    var addresses: [SocketAddress] = []
                    var cursor = info
                    while let entry = cursor {
                        if let address = entry.pointee.ai_addr.flatMap({ SocketAddress(UnsafePointer($0)) }),
                           !addresses.contains(address) {
                            addresses.append(address)
                        }
                        cursor = entry.pointee.ai_next
                    }
                    lookup.result = .success(addresses)
                }
                lookup.waker.take()?.wake()
            }, host, String(port), &hints)
            if result < 0 {
                lookup.isPending = false
                return .ready(.failure(WeftError(uvCode: result, operation: operation)))
            }
            self.lookup = lookup
        }
        guard let result = lookup!.result else {
            if lookup!.waker.map({ !$0.willWake(context.waker) }) ?? true { lookup!.waker = context.waker }
            return .pending
        }
        return .ready(result.mapError { WeftError($0.kind, operation: operation, detail: $0.detail) })
    }
}

/// A future of the addresses `host` resolves to (IPv4 and IPv6), with `port`.
public func resolve(host: String, port: Int) -> Resolve {
    Resolve(host: host, port: port)
}
