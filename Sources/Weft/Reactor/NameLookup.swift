import CLibUV

/// One `uv_getaddrinfo` in flight on libuv's thread pool, owned as every
/// request is (``RequestOperation``: retained from submission to callback).
final class NameLookup: RequestOperation<uv_getaddrinfo_t> {
    /// The addresses found (each once, in the resolver's order), or the error.
    private(set) var result: Result<[SocketAddress], WeftError>?

    /// Starts resolving `host` and `port` (a TCP service) on `loop`.
    static func start(host: String, port: Int, on loop: EventLoop) throws(WeftError) -> NameLookup {
        let lookup = NameLookup()
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        let result = uv_getaddrinfo(loop.uvLoop, lookup.request, { request, status, info in
            defer { uv_freeaddrinfo(info) }
            let lookup = NameLookup.finish(request!)
            lookup.result = status < 0
                ? .failure(WeftError(uvCode: status, operation: "getaddrinfo"))
                : .success(NameLookup.addresses(in: info))
            lookup.complete(status: status)
        }, host, String(port), &hints)
        if result < 0 {
            lookup.abandon()
            throw WeftError(uvCode: result, operation: "getaddrinfo")
        }
        return lookup
    }

    private static func addresses(in info: UnsafeMutablePointer<addrinfo>?) -> [SocketAddress] {
        var addresses: [SocketAddress] = []
        var cursor = info
        while let entry = cursor {
            if let address = entry.pointee.ai_addr.flatMap({ SocketAddress(UnsafePointer($0)) }),
               !addresses.contains(address) {
                addresses.append(address)
            }
            cursor = entry.pointee.ai_next
        }
        return addresses
    }
}
