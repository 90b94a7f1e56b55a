import Weft

/// The async book's `handle_connection`, as a hand-written future generic over
/// any byte stream (so it runs on a ``TCPStream`` or on an in-memory mock).
///
/// It reads the request line (until its line end, at most 8 KiB), then
/// routes the request line (`METHOD TARGET HTTP/1.x`) by its path, the query
/// string ignored: `GET /` gets `200 OK` with ``Pages/hello``; `GET /sleep`
/// gets the same after `sleepDuration` (other connections are served
/// meanwhile); any other path gets `404 NOT FOUND` with ``Pages/notFound``.
/// `HEAD` gets the same status and headers without the body; another method
/// gets `405 METHOD NOT ALLOWED`; a line that is not a request line gets
/// `400 BAD REQUEST`, and one that starts as a request line but does not end
/// within 8 KiB `414 URI TOO LONG` (RFC 9112, section 3: 8,000 octets is the
/// length a server should at least take).
/// Responses carry `Content-Length` and `Connection: close`, and the connection
/// is shut down after each, so real clients such as curl finish cleanly. Then
/// what the client still sends (the rest of a long request, a body) is read
/// and thrown away until it closes its side, for at most 2 s and 64 MiB
/// (`lingerDuration`, `maximumDiscarded`): closed with unread bytes,
/// the connection would be reset, and a client still sending would get
/// `ECONNRESET` instead of the response. A
/// client that has not sent its whole request line within `readTimeout` of
/// the connection's start (one deadline, not an idle timer: sending slowly
/// does not put it off) is closed without an answer;
/// a request already in the stream when the deadline fires (the process was
/// stopped, say) is still answered: 50 ms of grace after the deadline let the
/// loop read it. During a `/sleep` the handler watches the connection, so a client
/// that resets it (or whose connection breaks) releases it at once instead of
/// after the sleep; a client that half-closes, or sends more, is still
/// answered (and no longer watched).
///
/// A server that drains for a shutdown cancels `closeIdle`: a connection
/// that has not sent a byte of its request by then (a browser's preconnect,
/// an idle client) is closed without an answer after the same 50 ms of
/// grace, instead of holding the drain until its read timeout; one whose
/// request has begun, or arrives within the grace, is served.
///
/// Output: the status line sent (once the client closed its side, or the
/// linger ended), or `nil` if the client went away, timed out, or was idle
/// when `closeIdle` was cancelled.
public struct HandleConnection<Stream: AsyncRead & AsyncWrite>: Future {
    /// The longest request line taken, its line end not included (RFC 9112's
    /// `request-line`): with it, a CRLF client could send two bytes less
    /// than a bare-LF one.
    static var maximumRequestLine: Int { 8 * 1024 }
    /// What is read at most while waiting for the line end: the longest line
    /// and a CRLF.
    static var maximumRequestRead: Int { maximumRequestLine + 2 }
    /// How long after its read deadline a request is still taken.
    static var graceAfterDeadline: Duration { .milliseconds(50) }
    /// How long, at most, what the client sends after the response is read
    /// and discarded before the connection is closed.
    static var lingerDuration: Duration { .seconds(2) }
    /// How many bytes, at most, the client may send after the response
    /// before the connection is closed unread (reset): a 16 MiB body fits.
    static var maximumDiscarded: Int { 64 * 1024 * 1024 }

    enum Stage {
        /// `deadlinePassed`: the read deadline fired; `deadline` is now the
        /// short grace after it.
        case reading(deadline: Sleep, deadlinePassed: Bool)
        /// `watching`: the connection is still read, to notice a reset.
        case sleeping(Sleep, watching: Bool)
        case writing(WriteAll<Stream>)
        case shuttingDown(Shutdown<Stream>)
        /// After the shutdown: what the client still sends is read and
        /// discarded (`discarded` bytes so far) until it closes its side or
        /// `deadline` fires.
        case lingering(deadline: Sleep, discarded: Int)
    }

    var stream: Stream
    let sleepDuration: Duration
    var stage: Stage
    var request: [UInt8] = []
    /// Ready once the server asks idle connections to close; nil once the
    /// request has begun (or when the server never asks).
    var closeIdle: TokenCancelled?
    var statusLine = ""
    /// A `HEAD` request: the response has no body.
    var isHead = false

    /// A handler for one connection; `/sleep` waits `sleepDuration`, a client
    /// without its whole request line sent within `readTimeout` is closed,
    /// and so is one that has sent nothing when `closeIdle` is cancelled.
    public init(
        stream: Stream, sleepDuration: Duration = .seconds(5), readTimeout: Duration = .seconds(10),
        closeIdle: CancellationToken? = nil
    ) {
        self.stream = stream
        self.sleepDuration = sleepDuration
        self.stage = .reading(deadline: sleepFuture(for: readTimeout), deadlinePassed: false)
        self.closeIdle = closeIdle?.cancelledFuture()
    }

    public mutating func poll(_ context: inout Context) -> Poll<String?> {
        while true {
            switch stage {
            case .reading(var deadline, let deadlinePassed):
                switch readRequestHead(&context) {
                case .ready(true):
                    stage = route()
                case .ready(false):
                    return .ready(nil)  // the client left or broke the connection
                case .pending:
                    if !request.isEmpty {
                        closeIdle = nil  // the request has begun: it is served
                    } else if case .ready = closeIdle?.poll(&context) {
                        // What the kernel holds already (a request sent before
                        // the drain, its connection's first read not yet
                        // started) is read in the grace a deadline gets.
                        closeIdle = nil
                        if !deadlinePassed {
                            stage = .reading(deadline: sleepFuture(for: Self.graceAfterDeadline), deadlinePassed: true)
                            continue
                        }
                    }
                    if case .ready = deadline.poll(&context) {
                        if deadlinePassed { return .ready(nil) }
                        // The deadline can fire before the loop has read what
                        // arrived with it (after a SIGSTOP, the OS poll returns
                        // "timed out" with the request waiting): give the loop
                        // a short grace, in which it polls the socket, then
                        // give up.
                        stage = .reading(deadline: sleepFuture(for: Self.graceAfterDeadline), deadlinePassed: true)
                        continue
                    }
                    stage = .reading(deadline: deadline, deadlinePassed: deadlinePassed)
                    return .pending
                }
            case .sleeping(var timer, var watching):
                if watching {
                    switch watchWhileSleeping(&context) {
                    case .gone: return .ready(nil)
                    case .stopWatching: watching = false
                    case .open: break
                    }
                }
                guard case .ready = timer.poll(&context) else {
                    stage = .sleeping(timer, watching: watching)
                    return .pending
                }
                stage = respond("HTTP/1.1 200 OK", Pages.hello)
            case .writing(var write):
                switch write.poll(&context) {
                case .pending:
                    stage = .writing(write)
                    return .pending
                case .ready(.failure):
                    return .ready(nil)
                case .ready(.success):
                    stage = .shuttingDown(stream.shutdownFuture())
                }
            case .shuttingDown(var shutdown):
                guard case .ready(let result) = shutdown.poll(&context) else {
                    stage = .shuttingDown(shutdown)
                    return .pending
                }
                guard case .success = result else { return .ready(statusLine) }
                stage = .lingering(deadline: sleepFuture(for: Self.lingerDuration), discarded: 0)
            case .lingering(var deadline, var discarded):
                guard discardWhatArrives(&context, discarded: &discarded) else { return .ready(statusLine) }
                if case .ready = deadline.poll(&context) { return .ready(statusLine) }
                stage = .lingering(deadline: deadline, discarded: discarded)
                return .pending
            }
        }
    }

    /// Reads until the request line is complete or `maximumRequestLine` bytes
    /// arrived. Ready with `true` when there is something to answer, `false`
    /// on end of stream or error.
    private mutating func readRequestHead(_ context: inout Context) -> Poll<Bool> {
        var chunk = [UInt8](repeating: 0, count: 1024)
        while !hasRequestLine && request.count < Self.maximumRequestRead {
            let room = min(chunk.count, Self.maximumRequestRead - request.count)
            let result = chunk.withUnsafeMutableBytes {
                stream.pollRead(&context, into: UnsafeMutableRawBufferPointer(rebasing: $0[..<room]))
            }
            switch result {
            case .pending: return .pending
            case .ready(.failure), .ready(.success(0)): return .ready(!request.isEmpty)
            case .ready(.success(let count)): request += chunk[..<count]
            }
        }
        return .ready(true)
    }

    /// Reads and discards what the client sent after the response, adding it
    /// to `discarded`: false once there is nothing more to wait for (end of
    /// stream, an error, or `maximumDiscarded` reached), true when the read
    /// is pending (the waker registered).
    private mutating func discardWhatArrives(_ context: inout Context, discarded: inout Int) -> Bool {
        var scratch = [UInt8](repeating: 0, count: 16 * 1024)
        while discarded < Self.maximumDiscarded {
            let result = scratch.withUnsafeMutableBytes { stream.pollRead(&context, into: $0) }
            switch result {
            case .pending: return true
            case .ready(.failure), .ready(.success(0)): return false
            case .ready(.success(let count)): discarded += count
            }
        }
        return false
    }

    /// What reading shows of the client during a `/sleep`.
    enum PeerState {
        /// Nothing to read; the waker is registered for what comes.
        case open
        /// End of stream, or more bytes than its one request (discarded):
        /// still there, and no longer watched.
        case stopWatching
        /// Reset or broken.
        case gone
    }

    /// Reads what the client sends while its `/sleep` runs, to learn whether
    /// it is still there.
    private mutating func watchWhileSleeping(_ context: inout Context) -> PeerState {
        var scratch = [UInt8](repeating: 0, count: 512)
        let result = scratch.withUnsafeMutableBytes { stream.pollRead(&context, into: $0) }
        switch result {
        case .pending: return .open
        case .ready(.failure): return .gone
        case .ready(.success): return .stopWatching
        }
    }

    private var hasRequestLine: Bool {
        request.firstIndex(of: UInt8(ascii: "\n")) != nil
    }

    private mutating func route() -> Stage {
        let line = request.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        let text = String(decoding: line, as: UTF8.self).trimmingSuffix("\r")
        // In octets, as received: decoded, each byte that is not UTF-8 became
        // U+FFFD, three, and a short line of them was refused as too long.
        let length = line.last == UInt8(ascii: "\r") ? line.count - 1 : line.count
        let tooLong = hasRequestLine ? length > Self.maximumRequestLine : request.count >= Self.maximumRequestRead
        guard !tooLong else {
            return RequestLine.couldStart(request)
                ? respond("HTTP/1.1 414 URI TOO LONG", Pages.uriTooLong)
                : respond("HTTP/1.1 400 BAD REQUEST", Pages.badRequest)
        }
        guard let requestLine = RequestLine(text) else {
            return respond("HTTP/1.1 400 BAD REQUEST", Pages.badRequest)
        }
        isHead = requestLine.method == "HEAD"
        guard requestLine.method == "GET" || isHead else {
            return respond("HTTP/1.1 405 METHOD NOT ALLOWED", Pages.methodNotAllowed, extraHeaders: "Allow: GET, HEAD\r\n")
        }
        switch requestLine.path {
        case "/":
            return respond("HTTP/1.1 200 OK", Pages.hello)
        case "/sleep":
            return .sleeping(sleepFuture(for: sleepDuration), watching: true)
        default:
            return respond("HTTP/1.1 404 NOT FOUND", Pages.notFound)
        }
    }

    private mutating func respond(_ status: String, _ page: String, extraHeaders: String = "") -> Stage {
        statusLine = status
        let body = Array(page.utf8)
        let head = "\(status)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(body.count)\r\n"
            + "\(extraHeaders)Connection: close\r\n\r\n"
        return .writing(stream.writeAll(Array(head.utf8) + (isHead ? [] : body)))
    }
}

/// An HTTP/1.x request line, `METHOD TARGET VERSION`; nil when the text is
/// not one (RFC 9112, section 3: three parts separated by single spaces, a
/// token for the method, a target in one of its four forms, and `HTTP/1.0`
/// or `HTTP/1.1`). The target's forms (section 3.2): a path starting with `/`
/// (origin-form); `http://` or `https://` with a host (absolute-form, which
/// a server must accept: a client talking to a proxy sends it), whose path
/// is routed; `*` for OPTIONS and `host:port` for CONNECT, which route to no
/// page (their methods get 405). Anything else is malformed (400).
struct RequestLine {
    let method: String
    /// The target's path, without its query string: `/` for an absolute-form
    /// target with none; empty for `*` and `host:port`.
    let path: String

    init?(_ line: String) {
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0",
              Self.isToken(parts[0].utf8), !parts[1].isEmpty else { return nil }
        method = String(parts[0])
        let target = parts[1]
        if target.hasPrefix("/") {
            path = String(target.prefix { $0 != "?" && $0 != "#" })
        } else if let afterScheme = Self.afterScheme(target) {
            // The authority runs to the path, the query or the end.
            let authority = afterScheme.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            guard !authority.isEmpty else { return nil }
            let rest = afterScheme.dropFirst(authority.count)
            path = rest.hasPrefix("/") ? String(rest.prefix { $0 != "?" && $0 != "#" }) : "/"
        } else if (method == "OPTIONS" && target == "*") || (method == "CONNECT" && !target.contains("/")) {
            path = ""
        } else {
            return nil
        }
    }

    /// What follows `http://` or `https://` (the scheme in any case), or nil.
    private static func afterScheme(_ target: Substring) -> Substring? {
        for scheme in ["http://", "https://"] where target.prefix(scheme.count).lowercased() == scheme {
            return target.dropFirst(scheme.count)
        }
        return nil
    }

    /// Whether `bytes`, the start of a line, begin as a request line does: a
    /// method and a space, then a target starting with `/` or `http://` or
    /// `https://` (so a line cut off in its target is one too long, not a
    /// malformed one).
    static func couldStart(_ bytes: [UInt8]) -> Bool {
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")), isToken(bytes[..<space]) else { return false }
        let target = bytes.dropFirst(space + 1)
        if target.first == UInt8(ascii: "/") { return true }
        return afterScheme(Substring(String(decoding: target.prefix(8), as: UTF8.self))) != nil
    }

    /// Whether `bytes` are a token (RFC 9110, section 5.6.2), as a method is:
    /// one or more ASCII letters, digits or ``!#$%&'*+-.^_`|~``. Methods are
    /// case-sensitive, so `get` is a method, just not `GET`.
    static func isToken(_ bytes: some Collection<UInt8>) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"): true
            default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
