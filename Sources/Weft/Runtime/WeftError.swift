import CLibUV
import CWeftSupport

/// An error from Weft: a failed libuv call, or a runtime that cannot go on.
///
/// Its description names the operation and, for libuv errors, the libuv error
/// name and message, e.g. `connect: ECONNREFUSED (connection refused)`. Switch
/// on ``code`` to handle a kind of failure.
///
/// Where it appears: synchronous calls throw it typed (`throws(WeftError)`),
/// poll futures return it in their `Result`, and `async` calls throw it or,
/// when their task is cancelled, `CancellationError` (docs/ARCHITECTURE.md,
/// invariant 8).
public struct WeftError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// A libuv call failed with this (negative) error code.
        case libuv(code: Int32)
        /// `block(on:)` cannot make progress: no task is ready and nothing
        /// (timer, I/O, request, foreign waker) can ever wake one (docs/ARCHITECTURE.md, invariant 7).
        case stuck
        /// `block(on:)` was called while the runtime was already running.
        case reentrantBlock
        /// The runtime was shut down.
        case shutDown
        /// The stream, listener or handle was closed before or during the operation.
        case closed
        /// An argument was invalid; `detail` quotes it.
        case invalidArgument
        /// A loop-bound object was used from a thread other than its loop's.
        case wrongThread
    }

    /// What went wrong.
    public var kind: Kind { fields.kind }
    /// The operation that failed, e.g. `"uv_loop_init"` or `"block(on:)"`.
    public var operation: String { fields.operation }
    /// Extra context (what the runtime saw when it gave up).
    public var detail: String { fields.detail }

    /// The three fields, in one immutable object, so that a `WeftError` is one
    /// reference wide. Every poll future returns `Poll<Result<_, WeftError>>`:
    /// with the two strings and the kind inline, such enums were complex
    /// enough that the compiler copied and destroyed them through the type's
    /// value witnesses at run time, walking each nested enum's tag (about
    /// 1,400 instructions per connection in `weft-echo --poll`'s churn, out
    /// of 9,100). With one reference, a copy is a retain. Errors are rare;
    /// the allocation is paid only when one is made.
    private final class Fields: Sendable {
        let kind: Kind
        let operation: String
        let detail: String

        init(kind: Kind, operation: String, detail: String) {
            self.kind = kind
            self.operation = operation
            self.detail = detail
        }
    }

    private let fields: Fields

    /// An error of `kind` in `operation`, with optional `detail`.
    public init(_ kind: Kind, operation: String, detail: String = "") {
        fields = Fields(kind: kind, operation: operation, detail: detail)
    }

    public static func == (left: WeftError, right: WeftError) -> Bool {
        left.kind == right.kind && left.operation == right.operation && left.detail == right.detail
    }

    /// A libuv error for a failed call.
    init(uvCode: Int32, operation: String) {
        self.init(.libuv(code: uvCode), operation: operation)
    }

    /// The libuv error name, such as `ECONNREFUSED`, for libuv errors.
    public var name: String? {
        guard case .libuv(let code) = kind else { return nil }
        return Self.text(of: code).name
    }

    /// The libuv error message, such as `connection refused`, for libuv errors.
    public var message: String? {
        guard case .libuv(let code) = kind else { return nil }
        return Self.text(of: code).message
    }

    /// The name and message of libuv error `code` (`weft_error_text`).
    private static func text(of code: Int32) -> (name: String, message: String) {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { name in
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { message in
                weft_error_text(code, name.baseAddress, name.count, message.baseAddress, message.count)
                return (String(cString: name.baseAddress!), String(cString: message.baseAddress!))
            }
        }
    }

    public var description: String {
        let text: String
        switch kind {
        case .libuv(let code):
            let (name, message) = Self.text(of: code)  // both at once: each alone asks for both
            text = "\(name) (\(message))"
        case .stuck: text = "stuck: no task can make progress and nothing can wake one"
        case .reentrantBlock: text = "the runtime is already running; block(on:) cannot be nested"
        case .shutDown: text = "the runtime was shut down"
        case .closed: text = "operation on a closed handle"
        case .invalidArgument: text = "invalid argument"
        case .wrongThread: text = "called from a thread other than the loop's"
        }
        return detail.isEmpty ? "\(operation): \(text)" : "\(operation): \(text); \(detail)"
    }
}

extension WeftError {
    /// What a future that needs the loop running its poll returns when polled
    /// on a thread no Weft loop runs (by hand, or by another executor).
    static func outsideRuntime(_ operation: String) -> WeftError {
        WeftError(.wrongThread, operation: operation, detail: "polled outside a Weft runtime: no loop runs this thread")
    }

    /// What a future whose work has an effect (a socket made, a datagram
    /// sent, a file opened) returns when polled again after it completed,
    /// instead of doing the work twice.
    static func polledAgain(_ operation: String) -> WeftError {
        WeftError(.invalidArgument, operation: operation, detail: "polled after it completed")
    }

    /// A stream's wait through a flush mark names what it finds itself
    /// (closed, off its loop) after the write it usually serves; for a
    /// ``Flush`` those are the flush's errors. A write's own error, reported
    /// by the flush, keeps its name.
    @usableFromInline
    func asFlushError() -> WeftError {
        guard operation == "write", kind == .closed || kind == .wrongThread else { return self }
        return WeftError(kind, operation: "flush", detail: detail)
    }

    /// The same error, named as a step of `operation`: "bind localhost:70000
    /// (resolve localhost:70000)", so that the caller's operation leads.
    func within(_ operation: String) -> WeftError {
        WeftError(kind, operation: "\(operation) (\(self.operation))", detail: detail)
    }
}

/// Throws a `WeftError` for a negative libuv return code.
@discardableResult
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(WeftError) -> Int32 {
    if code < 0 { throw WeftError(uvCode: code, operation: operation()) }
    return code
}

extension WeftError {
    /// What went wrong, to switch on: the system errors a network program
    /// handles by name, Weft's own kinds, and ``other(_:)`` with the libuv code
    /// for the rest. The raw code stays in ``kind`` (`.libuv(code:)`).
    ///
    /// ```swift
    /// let runtime = try Runtime()
    /// do {
    ///     let stream = try runtime.block(on: TCPStream.connectFuture(to: SocketAddress("127.0.0.1:9"))).get()
    ///     stream.close()
    /// } catch {
    ///     switch error.code {
    ///     case .connectionRefused, .timedOut: print("nobody answers on port 9: \(error)")
    ///     case .addressInUse: print("pick another port")
    ///     default: throw error
    ///     }
    /// }
    /// ```
    public enum Code: Sendable, Hashable {
        case connectionRefused
        case connectionReset
        case connectionAborted
        case brokenPipe
        case notConnected
        case addressInUse
        case addressNotAvailable
        case hostUnreachable
        case networkUnreachable
        case timedOut
        /// No such file, or a host name that does not resolve (`ENOENT`;
        /// `EAI_NONAME`, or `EAI_NODATA`: the name is known but has no address).
        case notFound
        /// `EACCES` or `EPERM`.
        case permissionDenied
        /// A path names a directory where a file was expected (`EISDIR`).
        case isDirectory
        /// A component of a path is not a directory (`ENOTDIR`).
        case notDirectory
        /// The file or directory exists already (`EEXIST`).
        case alreadyExists
        /// The directory to remove is not empty (`ENOTEMPTY`).
        case directoryNotEmpty
        /// The process or the system ran out of descriptors (`EMFILE`, `ENFILE`).
        case tooManyOpenFiles
        /// `ECANCELED`: the request was cancelled (its future dropped, its handle closed).
        case cancelled
        /// The peer closed the stream (`EOF`).
        case endOfStream
        /// An invalid argument: `EINVAL`, or ``WeftError/Kind-swift.enum/invalidArgument``.
        case invalidArgument
        /// The handle was closed (``WeftError/Kind-swift.enum/closed``, or `EBADF`;
        /// a file's `EBADF`, the file not opened for what was asked, is
        /// ``invalidArgument``).
        case closed
        case stuck
        case reentrantBlock
        case shutDown
        case wrongThread
        /// Any other libuv error, by its (negative) code.
        case other(Int32)
    }

    /// What went wrong, to switch on. See ``Code``.
    public var code: Code {
        switch kind {
        case .stuck: return .stuck
        case .reentrantBlock: return .reentrantBlock
        case .shutDown: return .shutDown
        case .closed: return .closed
        case .invalidArgument: return .invalidArgument
        case .wrongThread: return .wrongThread
        case .libuv(let code): return Self.code(forLibuv: code)
        }
    }

    private static let libuvCodes: [Int32: Code] = [
        UV_ECONNREFUSED.rawValue: .connectionRefused,
        UV_ECONNRESET.rawValue: .connectionReset,
        UV_ECONNABORTED.rawValue: .connectionAborted,
        UV_EPIPE.rawValue: .brokenPipe,
        UV_ENOTCONN.rawValue: .notConnected,
        UV_EADDRINUSE.rawValue: .addressInUse,
        UV_EADDRNOTAVAIL.rawValue: .addressNotAvailable,
        UV_EHOSTUNREACH.rawValue: .hostUnreachable,
        UV_ENETUNREACH.rawValue: .networkUnreachable,
        UV_ETIMEDOUT.rawValue: .timedOut,
        UV_ENOENT.rawValue: .notFound,
        UV_EAI_NONAME.rawValue: .notFound,
        UV_EAI_NODATA.rawValue: .notFound,
        UV_EACCES.rawValue: .permissionDenied,
        UV_EPERM.rawValue: .permissionDenied,
        UV_EISDIR.rawValue: .isDirectory,
        UV_ENOTDIR.rawValue: .notDirectory,
        UV_EEXIST.rawValue: .alreadyExists,
        UV_ENOTEMPTY.rawValue: .directoryNotEmpty,
        UV_EMFILE.rawValue: .tooManyOpenFiles,
        UV_ENFILE.rawValue: .tooManyOpenFiles,
        UV_ECANCELED.rawValue: .cancelled,
        UV_EAI_CANCELED.rawValue: .cancelled,
        UV_EOF.rawValue: .endOfStream,
        UV_EINVAL.rawValue: .invalidArgument,
        UV_EBADF.rawValue: .closed,
    ]

    private static func code(forLibuv code: Int32) -> Code {
        libuvCodes[code] ?? .other(code)
    }
}
