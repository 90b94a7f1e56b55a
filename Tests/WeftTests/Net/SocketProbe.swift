import Foundation
import Glibc

/// This process's own socket descriptors, found by their addresses, so that a
/// test can read back with `getsockopt` what Weft set on a socket: Weft hands
/// out no descriptors. Linux only (the descriptors are listed from
/// `/proc/self/fd`).
///
/// A match is made while the socket is open, by addresses no other open socket
/// has (a port is bound once unless `SO_REUSEPORT` is asked for), so suites
/// running in parallel cannot be confused with one another.
enum SocketProbe {
    /// The open socket of this process of `type` (TCP's `SOCK_STREAM` or
    /// UDP's `SOCK_DGRAM`: their ports are apart) whose local port is
    /// `localPort` and, when given, whose peer's port is `peerPort`; with
    /// `listening`, only a listening socket (`SO_ACCEPTCONN`), without it only
    /// one that is not.
    static func descriptor(localPort: Int, peerPort: Int? = nil, listening: Bool = false,
                           type: __socket_type = SOCK_STREAM) -> Int32? {
        openSockets().first { fd in
            option(fd, SOL_SOCKET, SO_TYPE) == Int32(type.rawValue)
                && port(fd, getsockname) == localPort
                && (peerPort == nil || port(fd, getpeername) == peerPort)
                && (option(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1) == listening
        }
    }

    /// The open, connected Unix domain socket of this process whose peer is
    /// bound to `peerPath` (a client of the listener at that path).
    static func descriptor(unixPeerPath peerPath: String) -> Int32? {
        openSockets().first { path($0, getpeername) == peerPath }
    }

    /// The open Unix domain sockets of this process bound to `path`, and not
    /// listening: the connections a listener at `path` accepted.
    static func acceptedDescriptors(unixPath: String) -> [Int32] {
        openSockets().filter { path($0, getsockname) == unixPath && option($0, SOL_SOCKET, SO_ACCEPTCONN) == 0 }
    }

    /// An integer socket option (`SO_RCVBUF`, `IP_TTL`, …); nil if it cannot be read.
    static func option(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, level, name, &value, &length) == 0 ? value : nil
    }

    /// A socket's `SO_LINGER`, comparable in an expectation.
    struct Linger: Equatable {
        var isOn: Bool
        var seconds: Int32
    }

    /// `SO_LINGER`: whether it is on, and for how many seconds.
    static func linger(_ fd: Int32) -> Linger? {
        var value = Glibc.linger()
        var length = socklen_t(MemoryLayout<Glibc.linger>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_LINGER, &value, &length) == 0 else { return nil }
        return Linger(isOn: value.l_onoff != 0, seconds: value.l_linger)
    }

    /// A listening TCP socket's backlog: Linux reports it in `TCP_INFO`'s
    /// `tcpi_sacked` for a socket in the listen state.
    static func listenBacklog(_ fd: Int32) -> Int? {
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else { return nil }
        return Int(info.tcpi_sacked)
    }

    /// What Linux grants for a buffer-size request of `bytes` (`socket(7)`:
    /// the request, capped at `net.core.<name>_max`, doubled), with
    /// `name` `rmem` or `wmem`.
    static func grantedBufferSize(_ bytes: Int, _ name: String) -> Int {
        let maximum = (try? String(contentsOfFile: "/proc/sys/net/core/\(name)_max", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? Int(Int32.max)
        return 2 * min(bytes, maximum)
    }

    // MARK: - Listing and addresses

    /// The descriptors of this process that are sockets.
    private static func openSockets() -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return names.compactMap(Int32.init).filter { fd in
            var status = stat()
            return fstat(fd, &status) == 0 && status.st_mode & S_IFMT == S_IFSOCK
        }
    }

    private typealias NameCall = (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?) -> Int32

    /// The IPv4 or IPv6 port `call` (`getsockname` or `getpeername`) reports.
    private static func port(_ fd: Int32, _ call: NameCall) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
        }
        let family = Int32(storage.ss_family)
        guard result == 0 else { return nil }
        return withUnsafePointer(to: &storage) { pointer -> Int? in
            switch family {
            case AF_INET: pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            case AF_INET6: pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            default: nil
            }
        }
    }

    /// The Unix domain path `call` (`getsockname` or `getpeername`) reports.
    private static func path(_ fd: Int32, _ call: NameCall) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
        }
        guard result == 0, Int32(address.sun_family) == AF_UNIX,
              length > socklen_t(MemoryLayout<sa_family_t>.size) else { return nil }
        return withUnsafeBytes(of: address.sun_path) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
