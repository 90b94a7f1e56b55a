import CLibUV

/// The address of a Unix domain socket: a path in the file system, or a name
/// in Linux's abstract namespace (no file; gone when the last socket bound to
/// it closes).
///
/// <!-- snippet: compile-only: binds fixed names, which a second run would find taken -->
/// ```swift
/// let listener = try UnixListener.bind(.path("/tmp/echo.sock"))
/// let hidden = try UnixListener.bind(.abstract("weft-echo"))
/// ```
///
/// A path or name must fit `sockaddr_un` (107 bytes for a path, 107 for an
/// abstract name) and must not be empty or contain a NUL; binding, connecting
/// or ``UnixListener`` then fail with `.invalidArgument` saying so.
public enum UnixAddress: Sendable, Hashable, CustomStringConvertible {
    /// A socket file at this path.
    case path(String)
    /// A name in the abstract namespace (written `@name`).
    case abstract(String)

    /// The longest path or abstract name, in bytes: `sun_path` (108) less the
    /// path's terminating NUL or the abstract name's leading one.
    public static let maximumLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// The address `text` names, as ``description`` writes it: `@name` an
    /// abstract name, anything else a path (`./@name` the relative path
    /// `@name`, so that every address reads back as itself, the longest
    /// included). Fails with `.invalidArgument` when it does not fit (see above).
    ///
    /// ```swift
    /// let hidden = try UnixAddress(parsing: "@weft-echo")     // .abstract("weft-echo")
    /// let file = try UnixAddress(parsing: "/tmp/echo.sock")   // .path("/tmp/echo.sock")
    /// ```
    public init(parsing text: String) throws(WeftError) {
        if text.hasPrefix("@") {
            self = .abstract(String(text.dropFirst()))
        } else if text.hasPrefix("./"), Self.isEscaped(text) {
            self = .path(String(text.dropFirst(2)))
        } else {
            self = .path(text)
        }
        _ = try checkedBytes(operation: "UnixAddress(parsing: \"\(text)\")")
    }

    /// The path, or `@` and the abstract name; a relative path that starts
    /// with `@`, after any `./`, is written with one `./` more (`./@…`,
    /// `././@…`), so that it reads back as the path it is.
    public var description: String {
        switch self {
        case .path(let path): return Self.isEscaped(path) ? "./" + path : path
        case .abstract(let name): return "@" + name
        }
    }

    /// Whether `text` starts with `@` after any number of `./`: the paths
    /// ``description`` writes with a `./` more, and whose text
    /// ``init(parsing:)`` reads with that `./` less. (Escaping only a leading
    /// `@` but unescaping any `./@` read `.path("./@x")` back as `.path("@x")`.)
    private static func isEscaped(_ text: String) -> Bool {
        var rest = Substring(text)
        while rest.hasPrefix("./") { rest = rest.dropFirst(2) }
        return rest.hasPrefix("@")
    }

    /// The path's or name's bytes, and whether it is abstract; fails with
    /// `.invalidArgument` (in `operation`) when they do not fit `sockaddr_un`.
    private func checkedBytes(operation: String) throws(WeftError) -> (bytes: [UInt8], isAbstract: Bool) {
        let (text, isAbstract) = switch self {
        case .path(let path): (path, false)
        case .abstract(let name): (name, true)
        }
        let bytes = Array(text.utf8)
        let what = isAbstract ? "abstract name" : "path"
        guard !bytes.isEmpty else {
            throw WeftError(.invalidArgument, operation: operation, detail: "the \(what) is empty")
        }
        guard !bytes.contains(0) else {
            throw WeftError(.invalidArgument, operation: operation, detail: "the \(what) contains a NUL character")
        }
        guard bytes.count <= Self.maximumLength else {
            throw WeftError(.invalidArgument, operation: operation,
                            detail: "the \(what) is \(bytes.count) bytes long; a Unix socket address holds at most \(Self.maximumLength)")
        }
        return (bytes, isAbstract)
    }

    /// Calls `body` with this address as a `sockaddr_un` and its length;
    /// fails with `.invalidArgument` (in `operation`) when it does not fit.
    func withSockAddr<R>(
        operation: String, _ body: (UnsafePointer<sockaddr>, Int) throws(WeftError) -> R
    ) throws(WeftError) -> R {
        let (bytes, isAbstract) = try checkedBytes(operation: operation)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        let start = isAbstract ? 1 : 0  // an abstract name follows a NUL
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            for (index, byte) in bytes.enumerated() { path[start + index] = byte }
        }
        // A path's length counts its NUL; an abstract name's is exact.
        let length = offset + start + bytes.count + (isAbstract ? 0 : 1)
        return try withUnsafePointer(to: &address) { pointer throws(WeftError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (pointer) throws(WeftError) in try body(pointer, length) }
        }
    }
}
