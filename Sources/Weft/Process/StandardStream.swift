import CLibUV
import Synchronization

/// One of the process's standard streams (input, output or error) on a
/// runtime's loop, read and written the way what it is wants (libuv's
/// `uv_guess_handle`): a terminal or a pipe (or socket) through the stream
/// machinery of ``PipeStream`` (readiness on the loop, `uv_try_write` first,
/// backpressure), a file or a device such as `/dev/null` through a ``File``
/// (reads and writes on libuv's thread pool, read ahead and written behind).
/// Either way it is an ``AsyncBufRead`` and an ``AsyncWrite`` (Tokio's
/// `tokio::io::stdin()`, `stdout()` and `stderr()`):
///
/// <!-- snippet: compile-only: copies the process's standard input until it ends -->
/// ```swift
/// let input = try StandardStream.input()
/// let output = try StandardStream.output()
/// let copied = try await value(of: copy(from: input, to: output)).get()   // cat
/// try await output.write(Array("\(copied) bytes\n".utf8))
/// ```
///
/// Each one works on its own duplicate of the descriptor (`F_DUPFD_CLOEXEC`),
/// closed with it: closing a standard stream never closes descriptor 0, 1 or 2,
/// and two of them on one descriptor do not collide. A terminal is reopened by
/// libuv so that its non-blocking mode stays its own. A pipe's non-blocking
/// mode is shared with every process that holds the pipe (a shell's other
/// commands in `(weft-cat; echo done) | less`): a pipe found in blocking mode
/// is put back in it once the last of the process's standard streams on
/// pipes is closed (or dropped); not before, since two of them may share one
/// pipe (`2>&1`).
///
/// On a terminal, end of file (Ctrl-D) ends one read: the next reads the
/// terminal again, as `cat - -` does.
///
/// Bytes written are not lost at exit only once they were flushed:
/// `flush()` (or `write(_:)`, which flushes) before the process ends.
/// ``shutdown()`` closes a terminal's or pipe's stream (a pipe has no
/// half-close) and flushes a file.
///
/// The stream belongs to the loop it was opened on: the poll and synchronous
/// methods fail with `.wrongThread` elsewhere; the async ones hop there.
///
/// `@unchecked Sendable` for the reason ``PipeStream``'s and ``File``'s are:
/// its only mutable state of its own is `isClosed` (atomic), and theirs they
/// confine to the loop thread.
public final class StandardStream: @unchecked Sendable {
    /// Which standard stream.
    public enum Name: Int32, Sendable {
        case input = 0
        case output = 1
        case error = 2
    }

    /// What the descriptor is, as libuv tells (`uv_guess_handle`).
    public enum Kind: Sendable, Equatable {
        /// A terminal (`uv_tty_t`).
        case terminal
        /// A pipe or a socket (`uv_pipe_t`).
        case pipe
        /// A file or a device, read and written on the thread pool.
        case file
    }

    enum Backing {
        case stream(PipeStream)
        case file(File)
    }

    /// Which standard stream this is.
    public let name: Name
    /// What it turned out to be.
    public let kind: Kind
    let backing: Backing
    /// Set by the first ``close()``: a pipe's stream leaves ``OpenPipes`` once.
    private let isClosed = Atomic(false)

    private init(name: Name, kind: Kind, backing: Backing) {
        self.name = name
        self.kind = kind
        self.backing = backing
    }

    deinit {
        close()
    }

    /// The process's standard input on `runtime`'s loop (default: the
    /// runtime running the calling thread).
    ///
    /// - Throws: `.invalidArgument` without a runtime, `.wrongThread` for
    ///   another thread's runtime, `.closed` when descriptor 0 is not open,
    ///   and libuv's error when it cannot be opened.
    public static func input(runtime: Runtime? = nil) throws(WeftError) -> StandardStream {
        try open(.input, runtime: runtime)
    }

    /// The process's standard output; see ``input(runtime:)``.
    public static func output(runtime: Runtime? = nil) throws(WeftError) -> StandardStream {
        try open(.output, runtime: runtime)
    }

    /// The process's standard error; see ``input(runtime:)``.
    public static func error(runtime: Runtime? = nil) throws(WeftError) -> StandardStream {
        try open(.error, runtime: runtime)
    }

    /// Opens the standard stream `name` on `runtime`'s loop (default: the
    /// calling thread's). See ``input(runtime:)``.
    public static func open(_ name: Name, runtime: Runtime? = nil) throws(WeftError) -> StandardStream {
        let operation = "open standard \(name)"
        guard let loop = runtime?.loop ?? EventLoop.current else {
            throw WeftError(.invalidArgument, operation: operation,
                            detail: "no runtime: pass one, or open it from inside a task")
        }
        if let error = loop.refusesNewHandle(operation: operation) { throw error }
        let kind: Kind = switch weft_guess_handle(name.rawValue) {
        case 1: .terminal
        case 2: .pipe
        case 3: .file
        default: throw WeftError(.closed, operation: operation,
                                 detail: "descriptor \(name.rawValue) is not open, or is of a kind libuv cannot use")
        }
        let descriptor = weft_dup_cloexec(name.rawValue)
        guard descriptor >= 0 else { throw WeftError(uvCode: -weft_errno(), operation: operation) }
        switch kind {
        case .file:
            let file = try File(adoptingDescriptor: descriptor, closesDescriptor: true, path: "standard \(name)", runtime: runtime)
            return StandardStream(name: name, kind: kind, backing: .file(file))
        case .terminal:
            let stream = try PipeStream.adopting(descriptor, kind: .tty, loop: loop)
            return StandardStream(name: name, kind: kind, backing: .stream(stream))
        case .pipe:
            let stream = try OpenPipes.adopt(descriptor, standard: name.rawValue, loop: loop)
            return StandardStream(name: name, kind: kind, backing: .stream(stream))
        }
    }

    /// The loop it belongs to.
    var loop: EventLoop {
        switch backing {
        case .stream(let stream): stream.connection.loop
        case .file(let file): file.handle.loop
        }
    }

    /// The file behind it, when it is one (``Kind/file``): for the file
    /// operations a stream has not (`status()`, a copy between two files on
    /// the pool).
    public var file: File? {
        if case .file(let file) = backing { return file }
        return nil
    }

    /// Closes it (its duplicate descriptor; 0, 1 and 2 stay open). Bytes
    /// written and not flushed may be lost. Idempotent.
    public func close() {
        guard !isClosed.exchange(true, ordering: .relaxed) else { return }
        switch backing {
        case .stream(let stream) where kind == .pipe:
            // On the loop (or, once it is shut down, under its late-close
            // lock), then the pipe's mode may go back.
            let standard = name.rawValue
            stream.connection.loop.onLoop {
                stream.close()
                OpenPipes.closed(standard: standard)
            }
        case .stream(let stream):
            stream.close()
        case .file(let file):
            file.close()
        }
    }

    /// A future of up to `maxLength` bytes; empty at end of stream.
    /// Cancel-safe. The async form is ``read(upTo:)``.
    public func readFuture(upTo maxLength: Int = 64 * 1024) -> StandardRead {
        StandardRead(stream: self, maxLength: maxLength)
    }
}

extension StandardStream: AsyncBufRead, AsyncWrite {
    public func pollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        switch backing {
        case .stream(let stream): stream.pollRead(&context, into: buffer)
        case .file(let file): file.pollRead(&context, into: buffer)
        }
    }

    public func pollFillBuffer(_ context: inout Context) -> Poll<Result<UnsafeRawBufferPointer, WeftError>> {
        switch backing {
        case .stream(let stream): stream.pollFillBuffer(&context)
        case .file(let file): file.pollFillBuffer(&context)
        }
    }

    public func consume(_ count: Int) {
        switch backing {
        case .stream(let stream): stream.consume(count)
        case .file(let file): file.consume(count)
        }
    }

    public func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        switch backing {
        case .stream(let stream): stream.pollWrite(&context, bytes)
        case .file(let file): file.pollWrite(&context, bytes)
        }
    }

    public func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        switch backing {
        case .stream(let stream): stream.pollFlush(&context)
        case .file(let file): file.pollFlush(&context)
        }
    }

    public var flushMark: Int {
        switch backing {
        case .stream(let stream): stream.flushMark
        case .file(let file): file.flushMark
        }
    }

    public func pollFlush(_ context: inout Context, through mark: Int) -> Poll<Result<Void, WeftError>> {
        switch backing {
        case .stream(let stream): stream.pollFlush(&context, through: mark)
        case .file(let file): file.pollFlush(&context)
        }
    }

    public func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        switch backing {
        case .stream(let stream): stream.pollShutdown(&context)
        case .file(let file): file.pollShutdown(&context)
        }
    }
}

/// Up to `maxLength` bytes of a ``StandardStream``; empty at end of stream.
///
/// **Cancellation:** cancel-safe: bytes are consumed only by the poll that
/// returns them. A terminal is read on demand, one line per read; a read
/// dropped while it waits (a timeout) still takes the next line typed, which
/// the next read of the stream returns (not a child's read of the terminal).
public struct StandardRead: Future {
    let stream: StandardStream
    let maxLength: Int

    public mutating func poll(_ context: inout Context) -> Poll<Result<[UInt8], WeftError>> {
        guard maxLength >= 0 else {
            return .ready(.failure(WeftError(.invalidArgument, operation: "read(upTo: \(maxLength))",
                                             detail: "the length must not be negative")))
        }
        if let error = stream.loop.wrongThread("read") { return .ready(.failure(error)) }
        // Nothing asked, nothing to wait for (as a TCP stream's read): a
        // terminal would wait for a key, a file start a read.
        if maxLength == 0 { return .ready(.success([])) }
        switch stream.pollFillBuffer(&context) {
        case .pending: return .pending
        case .ready(.failure(let error)): return .ready(.failure(error))
        case .ready(.success(let available)):
            let bytes = [UInt8](available.prefix(maxLength))
            if !bytes.isEmpty { stream.consume(bytes.count) }
            return .ready(.success(bytes))
        }
    }
}

/// The process's standard streams open on pipes, and the standard
/// descriptors whose pipe was found in blocking mode: put back in it when the
/// last of those streams closes, after its handle is closed, so that libuv
/// never writes to a pipe in blocking mode. Not when the first closes: output
/// and error may share one pipe (`2>&1`), and the other would go on writing.
private enum OpenPipes {
    struct State {
        var foundBlocking: Set<Int32> = []
        /// The standard descriptor of each stream open (one entry per stream).
        var standards: [Int32] = []
        /// Streams adopted so far: a spawn tells by it whether one was
        /// adopted since it looked at its descriptors' modes.
        var adoptions = 0
    }

    static let state = Mutex(State())

    /// A stream on `loop` adopting `descriptor`, a duplicate of the standard
    /// descriptor `standard`, counted as open. Under the lock, so that a pipe
    /// is never adopted while the last stream's close restores its mode.
    static func adopt(_ descriptor: Int32, standard: Int32, loop: EventLoop) throws(WeftError) -> PipeStream {
        try state.locked { (state) throws(WeftError) -> PipeStream in
            let wasNonBlocking = DescriptorMode.isNonBlocking(descriptor)
            let stream = try PipeStream.adopting(descriptor, kind: .pipe, loop: loop)
            state.standards.append(standard)
            state.adoptions += 1
            if wasNonBlocking == false { state.foundBlocking.insert(standard) }
            return stream
        }
    }

    /// The stream on `standard` is closed; the last restores the blocking modes.
    static func closed(standard: Int32) {
        state.locked { state in
            if let index = state.standards.firstIndex(of: standard) { state.standards.remove(at: index) }
            guard state.standards.isEmpty else { return }
            for descriptor in state.foundBlocking { DescriptorMode.setNonBlocking(descriptor, false) }
            state.foundBlocking = []
        }
    }
}

extension StandardStream {
    /// Runs `body` (a spawn that hands a child a non-blocking descriptor as it
    /// is, and makes it non-blocking again afterwards: `InheritedDescriptors`)
    /// while no last close of a standard stream on a pipe can make the pipe
    /// blocking again: run in between, that close would be undone.
    static func whilePipeModesHeld<Result, E: Error>(_ body: () throws(E) -> Result) throws(E) -> Result {
        try OpenPipes.state.locked { (_: inout OpenPipes.State) throws(E) -> Result in try body() }
    }

    /// The status flags of `descriptor`, and how many standard streams on
    /// pipes were adopted so far (for ``keepPipesNonBlocking(_:adoptedSince:)``),
    /// read together.
    static func statusFlags(of descriptor: Int32) -> (flags: Int32, adoptions: Int) {
        OpenPipes.state.locked { state in (weft_status_flags(descriptor), state.adoptions) }
    }

    /// After a spawn that handed `descriptors` to a child as they were (found
    /// blocking, not set back): if a standard stream was adopted since
    /// `adoptions` was read, that stream made its pipe non-blocking, and the
    /// child, given it, made it blocking again under the stream's loop. Each
    /// of `descriptors` a stream is open on is made non-blocking again.
    static func keepPipesNonBlocking(_ descriptors: [Int32], adoptedSince adoptions: Int) {
        OpenPipes.state.locked { state in
            guard state.adoptions != adoptions else { return }
            for descriptor in descriptors where state.standards.contains(descriptor) {
                DescriptorMode.setNonBlocking(descriptor, true)
            }
        }
    }
}

