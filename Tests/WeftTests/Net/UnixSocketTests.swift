import Foundation
import Glibc
import Testing
import Weft

/// Unix domain stream sockets: the same stream machinery as TCP over a
/// `uv_pipe_t`. Paths live in a fresh temporary directory per test.
@Suite("Unix domain sockets")
struct UnixSocketTests {
    /// A fresh directory under the temporary directory, removed by `body`'s end.
    static func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let directory = NSTemporaryDirectory() + "weft-unix-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try body(directory)
    }

    static func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
        let directory = NSTemporaryDirectory() + "weft-unix-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try await body(directory)
    }

    @Test("64 MiB echoed over a Unix socket with half-close: the client writes all, shuts down, and reads back the same bytes (FNV-1a) then EOF")
    func echoSixtyFourMebibytes() throws {
        try Self.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let path = directory + "/echo.sock"
            let listener = try UnixListener.bind(.path(path), runtime: runtime)
            let total = 64 << 20
            let server = listener.acceptFuture().onSuccess { stream in
                copy(from: stream, to: stream).then { copied in stream.shutdownFuture().map { shut in copied.flatMap { _ in shut } } }
            }
            let block = (0..<(256 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            var sentHash = NetTest.FNV1a()
            for _ in 0..<(total / block.count) { sentHash.add(block) }
            let receivedHash = NetTest.Cell(NetTest.FNV1a())
            let client = UnixStream.connectFuture(to: .path(path)).onSuccess { stream in
                let (reader, writer) = stream.split()
                let writing = NetTest.steps(total / block.count) { _ in writer.writeAll(block) }.onSuccess { writer.shutdownFuture() }
                let reading = NetTest.Drain(reader: reader, body: { receivedHash.value.add($0) })
                return join(writing, reading).map { written, read in written.flatMap { read } }
            }
            let (served, received) = try runtime.block(on: timeoutFuture(.seconds(240), join(server, client))).get()
            try served.get()
            #expect(try received.get() == total)
            #expect(receivedHash.value == sentHash)
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
            #expect(!FileManager.default.fileExists(atPath: path), "the socket file Weft created must be removed on close")
        }
    }

    @Test("from async code: accept and connect on a path, write, half-close, read to EOF; SO_PEERCRED names this process")
    func asyncEchoAndPeerCredentials() async throws {
        try await Self.withTemporaryDirectory { directory in
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let baseline = try await NetTest.handleBaseline(on: loop)
            let path = directory + "/async.sock"
            let (reply, credentials) = try await awaitWithin(.seconds(30), loop.spawn { () async throws -> ([UInt8], UnixPeerCredentials) in
                let listener = try UnixListener.bind(.path(path))
                defer { listener.close() }
                let server = loop.spawn { () async throws -> UnixPeerCredentials in
                    let connection = try await listener.accept()
                    var request: [UInt8] = []
                    while case let bytes = try await connection.read(), !bytes.isEmpty { request += bytes }
                    try await connection.write(request.reversed())
                    try await connection.shutdown()
                    return try connection.peerCredentials
                }
                let client = try await UnixStream.connect(to: .path(path))
                try await client.write(NetTest.bytes("hello"))
                try await client.shutdown()
                var buffer = [UInt8](repeating: 0, count: 64)
                var reply: [UInt8] = []
                while case let count = try await client.read(into: &buffer), count > 0 { reply += buffer[..<count] }
                return (reply, try await server.value)
            })
            #expect(reply == NetTest.bytes("olleh"))
            #expect(credentials.processID == getpid())
            #expect(credentials.userID == getuid())
            #expect(credentials.groupID == getgid())
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
        }
    }

    @Test("UnixAddress(parsing:) reads what description writes: @name is abstract, a relative path starting with @ (after any ./) is written with a ./ more; what does not fit is refused")
    func addressParsing() throws {
        // The longest relative paths that start with `@` too: written `./@…`,
        // two bytes over the limit, they did not read back.
        let longest = "@" + String(repeating: "x", count: UnixAddress.maximumLength - 1)
        for address in [UnixAddress.abstract("x"), .path("/tmp/a.sock"), .path("rel.sock"), .abstract("@"), .path("@x"),
                        .path(longest), .path(String(longest.dropLast())),
                        // Paths that are themselves ./@…: written with a ./ more (./@x read back as @x).
                        .path("./@x"), .path("././@x"), .path("./x"), .path("./.@x")] {
            #expect(try UnixAddress(parsing: address.description) == address, "\(address)")
        }
        #expect(UnixAddress.path("@x").description == "./@x")
        #expect(UnixAddress.path("./@x").description == "././@x")
        #expect(UnixAddress.path("./x").description == "./x")
        #expect(try UnixAddress(parsing: "./@x") == .path("@x"), "the same file, not an abstract name")
        #expect(UnixAddress.abstract("x").description == "@x")
        for bad in ["", "@", String(repeating: "x", count: UnixAddress.maximumLength + 1), "a\0b"] {
            let error = try #require(throws: WeftError.self) { try UnixAddress(parsing: bad) }
            #expect(error.kind == .invalidArgument)
        }
        #expect(try UnixAddress(parsing: String(repeating: "x", count: UnixAddress.maximumLength)) == .path(String(repeating: "x", count: UnixAddress.maximumLength)))
    }

    @Test("the halves of a split Unix stream await as the whole stream does: the write half writes, flushes and shuts down from a task off the loop, the read half reads the reply to its end")
    func splitHalvesAwait() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let name = "weft-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let (listener, client) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> (UnixListener, UnixStream) in
            let listener = try UnixListener.bind(.abstract(name))
            return (listener, try await UnixStream.connect(to: .abstract(name)))
        })
        let server = loop.spawn { () async throws -> Void in
            let connection = try await listener.accept()
            var request: [UInt8] = []
            while case let bytes = try await connection.read(), !bytes.isEmpty { request += bytes }
            try await connection.write(request.reversed())
            try await connection.shutdown()
        }
        let (reader, writer) = client.split()
        let reply = try await awaitWithin(.seconds(20), Task { () async throws -> [UInt8] in
            try await writer.write(NetTest.bytes("hel"))
            try await writer.write(NetTest.bytes("xlo")[1...])
            try await writer.flush()
            try await writer.shutdown()
            var reply = try await reader.read(upTo: 2)
            var buffer = [UInt8](repeating: 0, count: 2)
            while case let count = try await reader.read(into: &buffer), count > 0 { reply += buffer[..<count] }
            return reply
        })
        try await awaitWithin(.seconds(20), server)
        #expect(reply == NetTest.bytes("olleh"))
        client.close()
        listener.close()
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }

    @Test("an abstract name: bind, connect and exchange bytes with no file in the file system; a second bind of the name fails with EADDRINUSE")
    func abstractName() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let name = "weft-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let listener = try UnixListener.bind(.abstract(name), runtime: runtime)
        #expect(listener.localAddress.description == "@" + name)
        let taken = try #require(throws: WeftError.self) { try UnixListener.bind(.abstract(name), runtime: runtime) }
        #expect(taken.code == .addressInUse)
        let server = listener.acceptFuture().onSuccess { stream in stream.writeAll(NetTest.bytes("abstract")).onSuccess { stream.shutdownFuture() } }
        let client = UnixStream.connectFuture(to: .abstract(name)).onSuccess { $0.readToEnd() }
        let (served, read) = try runtime.block(on: timeoutFuture(.seconds(10), join(server, client))).get()
        try served.get()
        #expect(try read.get() == NetTest.bytes("abstract"))
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("bad input is a clear WeftError: a path too long, a path that exists, an empty path, connecting where nobody listens")
    func badInput() throws {
        try Self.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let long = directory + "/" + String(repeating: "x", count: 200)
            let tooLong = try #require(throws: WeftError.self) { try UnixListener.bind(.path(long), runtime: runtime) }
            #expect(tooLong.kind == .invalidArgument)
            #expect(tooLong.operation == "bind \(long)")
            #expect(tooLong.detail.contains("at most \(UnixAddress.maximumLength)"))
            let connectLong = try runtime.block(on: UnixStream.connectFuture(to: .path(long)))
            #expect(connectLong.failure?.kind == .invalidArgument)

            let existing = directory + "/exists"
            _ = FileManager.default.createFile(atPath: existing, contents: Data("keep me".utf8))
            let exists = try #require(throws: WeftError.self) { try UnixListener.bind(.path(existing), runtime: runtime) }
            #expect(exists.code == .addressInUse)
            #expect(exists.name == "EADDRINUSE")
            #expect(exists.detail.contains("the path exists"))
            #expect(FileManager.default.contents(atPath: existing) == Data("keep me".utf8), "a file Weft did not create is left alone")

            let empty = try #require(throws: WeftError.self) { try UnixListener.bind(.path(""), runtime: runtime) }
            #expect(empty.kind == .invalidArgument)

            let missing = try runtime.block(on: UnixStream.connectFuture(to: .path(directory + "/nobody")))
            #expect(missing.failure?.code == .notFound)
            #expect(missing.failure?.operation == "connect \(directory)/nobody")

            // A socket file nobody listens on any more: ECONNREFUSED.
            let stale = directory + "/stale"
            let listener = try UnixListener.bind(.path(stale), runtime: runtime)
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { path in stale.utf8CString.withUnsafeBytes { path.copyMemory(from: $0) } }
            listener.close()
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            Glibc.close(fd)
            let refused = try runtime.block(on: UnixStream.connectFuture(to: .path(stale)))
            #expect(refused.failure?.code == .connectionRefused)
            #expect(refused.failure?.detail.contains("nothing listens there") == true)
            // A file that is not a socket: Linux refuses it the same way, and the detail says so.
            let notASocket = try runtime.block(on: UnixStream.connectFuture(to: .path(existing)))
            #expect(notASocket.failure?.code == .connectionRefused)
            #expect(notASocket.failure?.detail.contains("not a socket") == true)
            // An abstract name nothing is bound to: ECONNREFUSED too, with no file to blame.
            let unbound = try runtime.block(on: UnixStream.connectFuture(to: .abstract("weft-nobody-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")))
            #expect(unbound.failure?.code == .connectionRefused)
            #expect(unbound.failure?.detail == "no socket is bound to this abstract name", "\(String(describing: unbound.failure))")
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("a Unix stream has the TCP stream's backpressure: a peer that never reads makes writes wait at the queued limit; what the writes took is at most the kernel's buffer, the queued limit and one write")
    func backpressure() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let name = "weft-bp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let listener = try UnixListener.bind(.abstract(name), runtime: runtime)
        let accepted = NetTest.Cell<UnixStream?>(nil)
        let connected = try runtime.block(on: timeoutFuture(.seconds(10), join(
            listener.acceptFuture().map { $0.map { accepted.value = $0 } }, UnixStream.connectFuture(to: .abstract(name))))).get()
        try connected.0.get()
        let writer = try connected.1.get()
        let queuedLimit = 64 * 1024
        try writer.setBufferLimits(unread: 1024, queued: queuedLimit)
        // A known kernel buffer: a Unix stream's bytes wait in the receiver's
        // queue, charged to the sender's SO_SNDBUF.
        try writer.setOptions(SocketOptions(sendBufferSize: 32 * 1024))
        let kernelBuffer = SocketProbe.grantedBufferSize(32 * 1024, "wmem")
        // Nobody reads `accepted`: after the kernel's buffer fills, writes wait.
        let chunk = [UInt8](repeating: 3, count: 16 * 1024)
        let completed = NetTest.Cell(0)
        let outcome = try runtime.block(on: timeoutFuture(.seconds(2), NetTest.steps(10_000) { index in
            completed.value = index
            return writer.writeAll(chunk)
        }))
        #expect(outcome.failure != nil, "10,000 writes of 16 KiB to a peer that never reads all completed")
        let taken = completed.value * chunk.count
        #expect(taken > 0, "no write completed")
        #expect(taken <= kernelBuffer + queuedLimit + chunk.count,
                "writes took \(taken) bytes: more than the kernel's \(kernelBuffer), the queued limit and one write")
        writer.close()
        accepted.value?.close()
        accepted.value = nil
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
