import CLibUV
import Glibc
import Testing
import Weft

@Suite("WeftError.code")
struct ErrorCodeTests {
    @Test("errors from real sockets carry a code to switch on, and the raw libuv code stays in kind")
    func fromSockets() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let raw = try RawSocket.bound()  // bound, not listening: connections are refused
        defer { raw.close() }
        let refused = try runtime.block(on: TCPStream.connectFuture(to: SocketAddress(host: "127.0.0.1", port: raw.port)))
        let refusal = try #require(refused.failure)
        #expect(refusal.code == .connectionRefused)
        #expect(refusal.kind == .libuv(code: -ECONNREFUSED))

        let listener = try NetTest.bindLoopback(runtime)
        let taken = try listener.localAddress
        let inUse = try #require(throws: WeftError.self) { _ = try TCPListener.bind(taken, runtime: runtime) }
        #expect(inUse.code == .addressInUse)

        let badBacklog = try #require(throws: WeftError.self) {
            _ = try TCPListener.bind(NetTest.loopbackAnyPort(), backlog: 0, runtime: runtime)
        }
        #expect(badBacklog.code == .invalidArgument)

        listener.close()
        let closed = try #require(throws: WeftError.self) { _ = try listener.localAddress }
        #expect(closed.code == .closed)
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("each named libuv error maps to its code; any other keeps its number")
    func mapping() {
        let named: [(Int32, WeftError.Code)] = [
            (ECONNRESET, .connectionReset), (ECONNABORTED, .connectionAborted), (EPIPE, .brokenPipe),
            (ENOTCONN, .notConnected), (EADDRNOTAVAIL, .addressNotAvailable), (EHOSTUNREACH, .hostUnreachable),
            (ENETUNREACH, .networkUnreachable), (ETIMEDOUT, .timedOut), (ENOENT, .notFound),
            (EACCES, .permissionDenied), (EPERM, .permissionDenied), (EMFILE, .tooManyOpenFiles),
            (ENFILE, .tooManyOpenFiles), (ECANCELED, .cancelled), (EINVAL, .invalidArgument), (EBADF, .closed),
        ]
        for (errno, code) in named {
            #expect(WeftError(.libuv(code: -errno), operation: "test").code == code, "errno \(errno)")
        }
        #expect(WeftError(.libuv(code: -EXDEV), operation: "test").code == .other(-EXDEV))
        // A name that does not resolve: unknown (EAI_NONAME), or known with no
        // address (EAI_NODATA, glibc's answer for a name with only MX records,
        // which was .other(-3007)).
        #expect(WeftError(.libuv(code: UV_EAI_NONAME.rawValue), operation: "resolve x:80").code == .notFound)
        #expect(WeftError(.libuv(code: UV_EAI_NODATA.rawValue), operation: "resolve x:80").code == .notFound)
        #expect(WeftError(.stuck, operation: "block(on:)").code == .stuck)
        #expect(WeftError(.wrongThread, operation: "read").code == .wrongThread)
        #expect(WeftError(.shutDown, operation: "bind").code == .shutDown)
        #expect(WeftError(.reentrantBlock, operation: "block(on:)").code == .reentrantBlock)
    }

    @Test("a WeftError is one reference wide, and compares and prints by its fields")
    func oneReferenceWide() {
        // One reference, so that Poll<Result<_, WeftError>> values are copied
        // with a retain (see WeftError's `Fields`; docs/BENCHMARKS-HISTORY.md,
        // "Sixteenth session").
        #expect(MemoryLayout<WeftError>.size == MemoryLayout<AnyObject>.size)
        let error = WeftError(.libuv(code: -ECONNRESET), operation: "read", detail: "peer went away")
        #expect(error == WeftError(.libuv(code: -ECONNRESET), operation: "read", detail: "peer went away"))
        #expect(error != WeftError(.libuv(code: -ECONNRESET), operation: "write", detail: "peer went away"))
        #expect(error != WeftError(.libuv(code: -ECONNRESET), operation: "read"))
        #expect(error != WeftError(.closed, operation: "read", detail: "peer went away"))
        #expect(error.description == "read: ECONNRESET (connection reset by peer); peer went away")
    }

    // Before the fix that came with this test, libuv 1.44 (whose table lacks
    // EDQUOT, ESTALE, EDEADLK) named them "Unknown system error -122", and
    // leaked a copy of that text at each read of name or message.
    @Test("an errno libuv's table lacks is named and described as the C library does; one nobody knows keeps libuv's text")
    func errnoLibuvDoesNotName() {
        let quota = WeftError(.libuv(code: -EDQUOT), operation: "write")
        #expect(quota.name == "EDQUOT")
        #expect(quota.message == "disk quota exceeded")
        #expect(quota.description.contains("EDQUOT (disk quota exceeded)"), "\(quota)")
        #expect(WeftError(.libuv(code: -ESTALE), operation: "stat").name == "ESTALE")
        let refused = WeftError(.libuv(code: -ECONNREFUSED), operation: "connect")
        #expect(refused.name == "ECONNREFUSED" && refused.message == "connection refused")
        let unknown = WeftError(.libuv(code: -4242), operation: "x")
        #expect(unknown.name?.contains("4242") == true, "\(unknown)")
    }
}
