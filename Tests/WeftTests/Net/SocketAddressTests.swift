import Glibc
import Testing
import Weft

@Suite("Socket addresses")
struct SocketAddressTests {
    @Test("malformed address strings throw .invalidArgument quoting the input", arguments: [
        "",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:70000",
        "127.0.0.1:65536",
        "127.0.0.1:123456",
        "127.0.0.1:-1",
        "127.0.0.1:80a",
        "127.0.0.1: 80",
        "::1:80",
        "fe80::1:80",
        "[::1]80",
        "[::1",
        "256.0.0.1:80",
        "1.2.3:80",
        "localhost:80",
        ":80",
    ])
    func malformedString(text: String) throws {
        let error = try #require(throws: WeftError.self) { _ = try SocketAddress(text) }
        #expect(error.kind == .invalidArgument)
        #expect("\(error)".contains("\"\(text)\""), "the description quotes the input: \(error)")
        #expect(!error.detail.isEmpty, "the description says what is wrong")
    }

    @Test("an IPv6 host without brackets is rejected with a hint to use them")
    func ipv6WithoutBrackets() throws {
        let error = try #require(throws: WeftError.self) { _ = try SocketAddress("::1:7000") }
        #expect(error.kind == .invalidArgument)
        #expect(error.detail.contains("brackets"))
    }

    @Test("SocketAddress(host:port:) rejects an out-of-range port, quoting it")
    func hostPortOutOfRange() throws {
        for port in [70000, 65536, -1] {
            let error = try #require(throws: WeftError.self) { _ = try SocketAddress(host: "127.0.0.1", port: port) }
            #expect(error.kind == .invalidArgument)
            #expect("\(error)".contains("\(port)"))
        }
    }

    @Test("SocketAddress(host:port:) rejects a host that is not numeric, quoting it")
    func hostNotNumeric() throws {
        for host in ["localhost", "example.com", "", "1.2.3.4.5", "[::1]"] {
            let error = try #require(throws: WeftError.self) { _ = try SocketAddress(host: host, port: 80) }
            #expect(error.kind == .invalidArgument)
            #expect("\(error)".contains("\"\(host)\""))
        }
    }

    @Test("well-formed IPv4 and IPv6 addresses parse and print back", arguments: [
        ("127.0.0.1:7000", SocketAddress.Family.ipv4, "127.0.0.1", 7000),
        ("0.0.0.0:0", .ipv4, "0.0.0.0", 0),
        ("255.255.255.255:65535", .ipv4, "255.255.255.255", 65535),
        ("[::1]:7000", .ipv6, "::1", 7000),
        ("[::]:0", .ipv6, "::", 0),
        ("[fe80::1]:443", .ipv6, "fe80::1", 443),
    ])
    func wellFormed(text: String, family: SocketAddress.Family, host: String, port: Int) throws {
        let address = try SocketAddress(text)
        #expect(address.family == family)
        #expect(address.host == host)
        #expect(address.port == port)
        #expect(address.description == text)
        #expect(try SocketAddress(host: host, port: port) == address)
    }

    @Test("the host reads back in its canonical form, with an IPv6 zone, and a copy of an address holds no reference")
    func canonicalHost() throws {
        #expect(try SocketAddress(host: "0:0:0:0:0:0:0:1", port: 80).host == "::1")
        #expect(try SocketAddress(host: "::FFFF:127.0.0.1", port: 80).host == "::ffff:127.0.0.1")
        #expect(try SocketAddress(host: "fe80::1%lo", port: 80).host == "fe80::1%lo")
        // Plain bytes: copied once per datagram received or sent, without a retain.
        #expect(_isPOD(SocketAddress.self))
    }

    @Test("an IPv6 zone is an interface's name or number, kept in the address and read back; a zone that names no interface, or an empty one, is refused")
    func ipv6Zones() throws {
        let loopbackIndex = if_nametoindex("lo")
        try #require(loopbackIndex != 0, "this machine has no interface named lo")
        let byName = try SocketAddress(host: "fe80::1%lo", port: 80)
        let byNumber = try SocketAddress(host: "fe80::1%\(loopbackIndex)", port: 80)
        #expect(byNumber == byName)
        #expect(byNumber.host == "fe80::1%lo")
        #expect(try SocketAddress(byName.description) == byName)
        #expect(try SocketAddress(host: "fe80::1", port: 80) != byName, "the zone is part of the address")
        for zone in ["nosuchif0", "", "0"] {
            let error = try #require(throws: WeftError.self) { try SocketAddress(host: "fe80::1%\(zone)", port: 80) }
            #expect(error.kind == .invalidArgument)
            #expect(error.detail.contains("names no interface"), "\(error)")
        }
        // A zone whose interface has no name reads back as its number, which parses again.
        let unnamed = try SocketAddress(host: "fe80::1%4000000", port: 80)
        #expect(unnamed.host == "fe80::1%4000000")
        #expect(try SocketAddress(unnamed.description) == unnamed)
    }

    @Test("an IPv6 host with a zone is parsed whole, not cut at 39 characters (a valid 40-character one was read as another address, an invalid one taken); brackets take an IPv6 host only")
    func longZonedHostsAndBrackets() throws {
        let long = try SocketAddress(host: "0000:0000:0000:0000:0000:ffff:10.1.1.100%lo", port: 80)
        #expect(long == (try SocketAddress(host: "::ffff:10.1.1.100%lo", port: 80)), "\(long)")
        #expect(throws: WeftError.self) { try SocketAddress(host: "fe80:0000:0000:0000:0000:0000:0000:00011%lo", port: 80) }
        #expect(throws: WeftError.self) { try SocketAddress("[1.2.3.4]:80") }
    }
}

