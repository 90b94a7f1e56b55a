import HelloServer
import Testing
import Weft

/// The async book's unit test of `handle_connection` over an in-memory stream
/// ("Testing the TCP Server"), with Weft's `AsyncRead`/`AsyncWrite`.
@Suite("The async book's mock TCP stream")
struct MockStreamTests {
    /// The book's `MockTcpStream`: reads are served from `readData`, writes
    /// land in `writeData`. As in the book, a read copies from the front of
    /// `readData` without consuming it, and every write, flush and close is
    /// ready at once. A class, so the handler's copy is the same stream.
    final class MockTCPStream: AsyncRead, AsyncWrite {
        var readData: [UInt8]
        var writeData: [UInt8]

        init(readData: [UInt8], writeData: [UInt8] = []) {
            self.readData = readData
            self.writeData = writeData
        }

        func pollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
            let size = min(readData.count, buffer.count)
            readData.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[..<size])) }
            return .ready(.success(size))
        }

        func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
            writeData.append(contentsOf: bytes)
            return .ready(.success(bytes.count))
        }

        func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
            .ready(.success(()))
        }

        func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
            .ready(.success(()))
        }
    }

    /// The book's input: the request line at the start of a zero-filled 1 KiB buffer.
    static func request(_ line: String) -> [UInt8] {
        var contents = [UInt8](repeating: 0, count: 1024)
        let input = Array(line.utf8)
        contents.replaceSubrange(0..<input.count, with: input)
        return contents
    }

    static func response(_ status: String, _ page: String) -> String {
        "\(status)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(page.utf8.count)\r\nConnection: close\r\n\r\n\(page)"
    }

    @Test("GET / on a mock stream answers 200 OK with the hello page")
    func hello() throws {
        let runtime = try Runtime()
        let stream = MockTCPStream(readData: Self.request("GET / HTTP/1.1\r\n"))
        let status = try runtime.block(on: HandleConnection(stream: stream))
        #expect(status == "HTTP/1.1 200 OK")
        let written = NetTest.text(stream.writeData)
        #expect(written.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(written.contains(Pages.hello))
        #expect(written == Self.response("HTTP/1.1 200 OK", Pages.hello))
        #expect(runtime.pendingTimerCount == 0, "the read deadline was dropped")
    }

    @Test("HEAD gets the status and headers GET would get, with the body's Content-Length, and no body", arguments: [
        ("HEAD / HTTP/1.1\r\n", "HTTP/1.1 200 OK", Pages.hello),
        ("HEAD /missing HTTP/1.1\r\n", "HTTP/1.1 404 NOT FOUND", Pages.notFound),
    ])
    func head(line: String, status: String, page: String) throws {
        let runtime = try Runtime()
        let stream = MockTCPStream(readData: Self.request(line))
        #expect(try runtime.block(on: HandleConnection(stream: stream)) == status)
        let written = NetTest.text(stream.writeData)
        #expect(written.hasPrefix(status + "\r\n"))
        #expect(written.contains("Content-Length: \(page.utf8.count)\r\n"))
        #expect(written.hasSuffix("\r\n\r\n"), "a body was sent: \(written)")
    }

    @Test("a method other than GET and HEAD gets 405 with an Allow header")
    func methodNotAllowed() throws {
        let runtime = try Runtime()
        let stream = MockTCPStream(readData: Self.request("DELETE / HTTP/1.1\r\n"))
        #expect(try runtime.block(on: HandleConnection(stream: stream)) == "HTTP/1.1 405 METHOD NOT ALLOWED")
        let written = NetTest.text(stream.writeData)
        #expect(written.contains("Allow: GET, HEAD\r\n"))
        #expect(written.hasSuffix(Pages.methodNotAllowed))
    }

    @Test("an unknown path on a mock stream answers 404 NOT FOUND with the not-found page")
    func notFound() throws {
        let runtime = try Runtime()
        let stream = MockTCPStream(readData: Self.request("GET /missing HTTP/1.1\r\n"))
        let status = try runtime.block(on: HandleConnection(stream: stream))
        #expect(status == "HTTP/1.1 404 NOT FOUND")
        let written = NetTest.text(stream.writeData)
        #expect(written.hasPrefix("HTTP/1.1 404 NOT FOUND\r\n"))
        #expect(written.contains(Pages.notFound))
        #expect(!written.contains(Pages.hello))
    }

    @Test("GET /sleep on a mock stream answers 200 OK once the sleep duration has passed")
    func sleepRoute() throws {
        let runtime = try Runtime()
        let stream = MockTCPStream(readData: Self.request("GET /sleep HTTP/1.1\r\n"))
        let start = ContinuousClock.now
        let status = try runtime.block(on: HandleConnection(stream: stream, sleepDuration: .milliseconds(50)))
        let elapsed = ContinuousClock.now - start
        #expect(status == "HTTP/1.1 200 OK")
        #expect(NetTest.text(stream.writeData) == Self.response("HTTP/1.1 200 OK", Pages.hello))
        #expect(elapsed >= .milliseconds(50))
        #expect(elapsed < .seconds(5))
    }

    @Test("the request line alone decides the route: a bare LF ends it, HTTP/1.0 is served, the query string is ignored, an absolute-form target is routed by its path (it got 400), other methods (any token, OPTIONS * and CONNECT host:port among them) get 405 and a malformed line 400", arguments: [
        ("GET / HTTP/1.1\n", "HTTP/1.1 200 OK"),
        ("GET / HTTP/1.0\r\n", "HTTP/1.1 200 OK"),
        ("GET /?name=weft&x=1 HTTP/1.1\r\n", "HTTP/1.1 200 OK"),
        ("GET /missing?x HTTP/1.1\r\n", "HTTP/1.1 404 NOT FOUND"),
        ("POST / HTTP/1.1\r\n", "HTTP/1.1 405 METHOD NOT ALLOWED"),
        ("GET / HTTP/2.0\r\n", "HTTP/1.1 400 BAD REQUEST"),
        ("GET  / HTTP/1.1\r\n", "HTTP/1.1 400 BAD REQUEST"),
        ("GET index.html HTTP/1.1\r\n", "HTTP/1.1 400 BAD REQUEST"),
        // The absolute-form a client sends to a proxy, which a server must accept (RFC 9112, 3.2.2).
        ("GET http://127.0.0.1:7878/ HTTP/1.1\r\n", "HTTP/1.1 200 OK"),
        ("GET HTTP://h HTTP/1.1\r\n", "HTTP/1.1 200 OK"),  // no path: /
        ("HEAD https://h/missing?x HTTP/1.1\r\n", "HTTP/1.1 404 NOT FOUND"),
        ("GET http:///x HTTP/1.1\r\n", "HTTP/1.1 400 BAD REQUEST"),  // no host
        // The asterisk and authority forms, each of its method only: 405, not 400.
        ("OPTIONS * HTTP/1.1\r\n", "HTTP/1.1 405 METHOD NOT ALLOWED"),
        ("CONNECT example.com:443 HTTP/1.1\r\n", "HTTP/1.1 405 METHOD NOT ALLOWED"),
        ("GET * HTTP/1.1\r\n", "HTTP/1.1 400 BAD REQUEST"),
        ("get / HTTP/1.1\r\n", "HTTP/1.1 405 METHOD NOT ALLOWED"),  // methods are case-sensitive tokens
        ("M-SEARCH / HTTP/1.1\r\n", "HTTP/1.1 405 METHOD NOT ALLOWED"),
        ("GÉT / HTTP/1.1\r\n", "HTTP/1.1 400 BAD REQUEST"),  // not a token: not ASCII
        ("G(ET / HTTP/1.1\r\n", "HTTP/1.1 400 BAD REQUEST"),
        ("\r\n", "HTTP/1.1 400 BAD REQUEST"),
    ])
    func routing(line: String, expected: String) throws {
        let runtime = try Runtime()
        let stream = MockTCPStream(readData: Self.request(line))
        #expect(try runtime.block(on: HandleConnection(stream: stream)) == expected)
        #expect(NetTest.text(stream.writeData).hasPrefix(expected + "\r\n"))
    }

    @Test("a mock stream that never yields a byte is given up after readTimeout, with no answer")
    func silentClient() throws {
        let runtime = try Runtime()
        let silent = SilentStream()
        let start = ContinuousClock.now
        let status = try runtime.block(on: HandleConnection(stream: silent, readTimeout: .milliseconds(40)))
        #expect(status == nil)
        #expect(ContinuousClock.now - start >= .milliseconds(40))
        #expect(silent.written.isEmpty)
        #expect(runtime.pendingTimerCount == 0)
    }

    /// A stream whose reads never complete (and which never wakes anyone).
    final class SilentStream: AsyncRead, AsyncWrite {
        var written: [UInt8] = []
        func pollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
            .pending
        }
        func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
            written.append(contentsOf: bytes)
            return .ready(.success(bytes.count))
        }
        func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> { .ready(.success(())) }
        func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> { .ready(.success(())) }
    }
}
