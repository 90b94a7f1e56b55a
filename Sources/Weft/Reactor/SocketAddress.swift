import CLibUV

/// An IPv4 or IPv6 socket address: a numeric host and a port.
///
/// ```swift
/// let a = try SocketAddress("127.0.0.1:7000")
/// let b = try SocketAddress("[::1]:7000")
/// let c = try SocketAddress(host: "127.0.0.1", port: 0)   // port 0: any free port
/// ```
///
/// Parsing never resolves names; use ``resolve(host:port:)`` (or its poll form ``resolveFuture(host:port:)``) or
/// ``TCPStream/connect(host:port:)`` for those. A malformed address throws a
/// ``WeftError`` of kind `.invalidArgument` whose description quotes the input.
///
/// Two addresses are equal when their binary forms are (`::1` and
/// `0:0:0:0:0:0:0:1` are one address). The binary form is kept beside the
/// text, so an address received with a datagram is formatted only when its
/// `host` is read, and sending to an address parses nothing again.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address family.
    public enum Family: Sendable, Hashable { case ipv4, ipv6 }

    /// The address family.
    public let family: Family
    /// The port.
    public let port: Int
    /// The `sockaddr_in` or `sockaddr_in6`, zero-filled to 28 bytes. With it
    /// an address is plain bytes: copying one (once per datagram received
    /// or sent) retains nothing.
    private let raw: RawSockAddr

    /// The numeric host in its canonical form, formatted when read:
    /// `127.0.0.1`, `::1` (also for `0:0:0:0:0:0:0:1`), `fe80::1%eth0` for
    /// an IPv6 address with a zone.
    public var host: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var zone = ""
        raw.withSockAddr { address in
            switch family {
            case .ipv4:
                _ = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { uv_ip4_name($0, &text, text.count) }
            case .ipv6:
                address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { ipv6 in
                    _ = uv_ip6_name(ipv6, &text, text.count)
                    if ipv6.pointee.sin6_scope_id != 0 { zone = "%" + Self.zoneName(ipv6.pointee.sin6_scope_id) }
                }
            }
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + zone
    }

    /// The interface index an IPv6 zone names: an interface's name (`lo`,
    /// `eth0`) or its number. libuv's `uv_ip6_addr` reads only names and takes
    /// an unknown one as no zone at all, which would send elsewhere.
    private static func zoneIndex(_ zone: Substring, operation: String) throws(WeftError) -> UInt32 {
        if !zone.isEmpty, zone.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let index = UInt32(zone), index > 0 {
            return index
        }
        var index: UInt32 = 0
        if !zone.isEmpty, !zone.utf8.contains(0) {
            var address = sockaddr_in6()
            // uv_ip6_addr looks the name up (if_nametoindex) for "::%zone".
            if uv_ip6_addr("::%" + zone, 0, &address) == 0 { index = address.sin6_scope_id }
        }
        guard index != 0 else {
            throw WeftError(.invalidArgument, operation: operation, detail: "zone '%\(zone)' names no interface on this machine")
        }
        return index
    }

    /// An IPv6 zone's interface name, or its number where it has none.
    private static func zoneName(_ index: UInt32) -> String {
        var name = [CChar](repeating: 0, count: Int(UV_IF_NAMESIZE))
        var size = name.count
        guard uv_if_indextoname(index, &name, &size) == 0 else { return String(index) }
        return String(decoding: name.prefix(size).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func == (left: SocketAddress, right: SocketAddress) -> Bool {
        left.raw == right.raw
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(raw)
    }

    /// Parses `"host:port"` (IPv4) or `"[host]:port"` (IPv6).
    public init(_ text: String) throws(WeftError) {
        let invalid = { (reason: String) in
            WeftError(.invalidArgument, operation: "SocketAddress(\"\(text)\")", detail: reason)
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw invalid("missing ']' after an IPv6 host") }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw invalid("expected ':port' after ']'") }
            guard host.contains(":") else { throw invalid("brackets are for an IPv6 host; write an IPv4 one without") }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw invalid("expected host:port") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { throw invalid("an IPv6 host must be written in brackets: [host]:port") }
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber),
              portText.count <= 5, let port = Int(portText) else {
            throw invalid("port must be a number from 0 to 65535")
        }
        do {
            try self.init(host: String(host), port: port)
        } catch {
            throw invalid(error.detail)
        }
    }

    /// An address from a numeric host (IPv4 dotted quad or IPv6) and a port.
    public init(host: String, port: Int) throws(WeftError) {
        let operation = "SocketAddress(host: \"\(host)\", port: \(port))"
        guard (0...65535).contains(port) else {
            throw WeftError(.invalidArgument, operation: operation, detail: "port \(port) is not in 0...65535")
        }
        // libuv reads the host as a C string: a NUL would cut it short.
        guard !host.utf8.contains(0) else {
            throw WeftError(.invalidArgument, operation: operation, detail: "the host contains a NUL character")
        }
        var ipv4 = sockaddr_in()
        var ipv6 = sockaddr_in6()
        if uv_ip4_addr(host, Int32(port), &ipv4) == 0 {
            family = .ipv4
            raw = RawSockAddr(copying: &ipv4)
        } else if let percent = host.firstIndex(of: "%") {
            // The address without its zone: libuv parses an address with one
            // from a copy cut at 39 characters (a valid longer one was read
            // as another, an invalid one taken).
            guard uv_ip6_addr(String(host[..<percent]), Int32(port), &ipv6) == 0 else {
                throw WeftError(.invalidArgument, operation: operation, detail: "'\(host)' is not a numeric IPv4 or IPv6 address")
            }
            ipv6.sin6_scope_id = try Self.zoneIndex(host[host.index(after: percent)...], operation: operation)
            family = .ipv6
            raw = RawSockAddr(copying: &ipv6)
        } else if uv_ip6_addr(host, Int32(port), &ipv6) == 0 {
            family = .ipv6
            raw = RawSockAddr(copying: &ipv6)
        } else {
            throw WeftError(.invalidArgument, operation: operation, detail: "'\(host)' is not a numeric IPv4 or IPv6 address")
        }
        self.port = port
    }

    /// Reads a `sockaddr` filled in by the OS (IPv4 or IPv6 only); formats
    /// nothing until `host` is read.
    init?(_ address: UnsafePointer<sockaddr>) {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            var ipv4 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self)
            ipv4.sin_zero = (0, 0, 0, 0, 0, 0, 0, 0)
            family = .ipv4
            port = Int(UInt16(bigEndian: ipv4.sin_port))
            raw = RawSockAddr(copying: &ipv4)
        case AF_INET6:
            var ipv6 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in6.self)
            ipv6.sin6_flowinfo = 0  // not part of the address (RFC 6437)
            family = .ipv6
            port = Int(UInt16(bigEndian: ipv6.sin6_port))
            raw = RawSockAddr(copying: &ipv6)
        default:
            return nil
        }
    }

    /// Calls `body` with this address as a C `sockaddr`.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>) -> R) -> R {
        raw.withSockAddr(body)
    }

    /// The size of this address's `sockaddr` (`sockaddr_in` or `sockaddr_in6`).
    var sockAddrLength: Int {
        family == .ipv4 ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size
    }

    /// `127.0.0.1:7000` or `[::1]:7000`.
    public var description: String {
        family == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// A `sockaddr_in` or `sockaddr_in6` by value: 28 bytes, zero beyond the
/// structure's own size, so equal addresses have equal words.
///
/// Its pointer use is safe: `init` copies at most 28 bytes (checked) into the
/// words, and `withSockAddr` lends a pointer to a local copy only for the
/// duration of `body`, which hands it to C (libuv, the kernel) to read; Swift
/// never reads the words through a `sockaddr` type.
private struct RawSockAddr: Sendable, Hashable {
    private var words: (UInt64, UInt64, UInt64, UInt32) = (0, 0, 0, 0)

    init<Address>(copying address: inout Address) {
        precondition(MemoryLayout<Address>.size <= 28)
        withUnsafeMutableBytes(of: &words) { words in
            withUnsafeBytes(of: &address) { words.copyMemory(from: $0) }
        }
    }

    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>) -> R) -> R {
        var copy = words
        return withUnsafeMutableBytes(of: &copy) { bytes in
            body(bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self))
        }
    }

    static func == (left: RawSockAddr, right: RawSockAddr) -> Bool {
        left.words.0 == right.words.0 && left.words.1 == right.words.1
            && left.words.2 == right.words.2 && left.words.3 == right.words.3
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}

/// Reads a socket's local or peer address with `getsockname`-style `call`.
func socketAddress(
    operation: String,
    _ call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<Int32>) -> Int32
) throws(WeftError) -> SocketAddress {
    var storage = sockaddr_storage()
    var length = Int32(MemoryLayout<sockaddr_storage>.size)
    let result = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call($0, &length) }
    }
    try check(result, operation)
    let address = withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { SocketAddress($0) }
    }
    guard let address else {
        throw WeftError(.invalidArgument, operation: operation, detail: "not an IPv4 or IPv6 address")
    }
    return address
}
