import CLibUV
import CWeftSupport
import Synchronization

/// The owner of one connected libuv stream, a `uv_tcp_t` (``TCPStream``), a
/// `uv_pipe_t` on a Unix domain socket (``UnixStream``) or on a pipe (a
/// ``PipeStream``: a child's standard stream, an anonymous pipe), or a
/// `uv_tty_t` on a terminal: its inbound buffer,
/// its outbound queue accounting, and the wakers of the tasks using it. The
/// one stream machinery: reading, lending, writing, half-close and the
/// loop's budget never depend on the kind (``Kind``); only connecting, the
/// TCP options and the addresses do. Confined to the loop thread.
///
/// Handle lifetime: the `uv_tcp_t` or `uv_pipe_t` is allocated apart from this object;
/// `stream.data` points back here unretained; `close()` clears `data` and
/// closes the handle, which is freed in its close callback. Requests
/// (`uv_write_t`, `uv_shutdown_t`, `uv_connect_t`) are owned by
/// ``StreamRequest``s that retain this connection until their callback runs,
/// so a callback never reaches freed memory. Whether the connection stays
/// *open* is decided by the public ``TCPStream`` or ``UnixStream`` wrapper,
/// whose deinit calls `close()`; the read futures hold the wrapper, not only
/// this connection, so a pending read keeps the stream open.
///
/// Layout: reading here, lending a reader's buffer in
/// `StreamConnection+Lending.swift`, writing and shutdown in
/// `StreamConnection+Writing.swift`, connecting, options and addresses in
/// `StreamConnection+Socket.swift`. The other files reach the state below, which
/// nothing outside them touches.
final class StreamConnection: SocketOwner {
    /// What kind of libuv stream the handle is.
    enum Kind {
        /// A `uv_tcp_t`.
        case tcp
        /// A `uv_pipe_t` on a Unix domain stream socket.
        case unixDomain
        /// A `uv_pipe_t` on a pipe or any other stream descriptor that is not a
        /// Unix domain socket one connected (a child's standard stream, whose
        /// libuv makes a socket pair; an anonymous pipe; an inherited descriptor).
        case pipe
        /// A `uv_tty_t` on a terminal descriptor.
        case tty
    }

    /// A pooled read buffer holding unread bytes in `start..<end`.
    struct Chunk {
        let base: UnsafeMutableRawPointer
        var start: Int
        var end: Int
    }

    /// What most connections never need, in a box made on first use (see
    /// ``uncommon``): the errors the stream reported, buffer limits other than
    /// the defaults, and the shutdown and connect operations.
    final class Uncommon {
        @exclusivity(unchecked) var readError: WeftError?
        @exclusivity(unchecked) var writeError: WeftError?
        @exclusivity(unchecked) var readHighWater = StreamConnection.defaultReadHighWater
        @exclusivity(unchecked) var writeHighWater = StreamConnection.defaultWriteHighWater
        @exclusivity(unchecked) var shutdownOperation: StreamRequest<uv_shutdown_t>?
        /// What the shutdown's flush waits for: the ``StreamConnection/flushMark``
        /// of its first poll, so that a task writing on beside it cannot put
        /// the shutdown off for as long as it writes.
        @exclusivity(unchecked) var shutdownFlushMark: Int?
        /// A pipe or terminal closed by its shutdown (it has no half-close):
        /// the shutdown succeeded, for every task waiting on it and later calls.
        @exclusivity(unchecked) var closedByShutdown = false
        /// Bytes ever queued with `uv_write`: see ``StreamConnection/flushMark``.
        @exclusivity(unchecked) var queuedWriteTotal = 0
        /// Of them, those written before any write failed or was cancelled:
        /// a flush whose mark they passed succeeded, whatever came after.
        @exclusivity(unchecked) var writtenWriteTotal = 0
        /// A connect in flight, told to forget its waiting task if the stream closes first.
        @exclusivity(unchecked) var connectOperation: StreamRequest<uv_connect_t>?
        /// `sendfile` calls putting a file's bytes on the socket from a pool
        /// thread (``FileSend``), whose future may have been dropped: writes,
        /// flushes and shutdowns wait for them (``beginTransfer()``).
        @exclusivity(unchecked) var transfersInFlight = 0
    }

    /// The chunks of unread bytes, oldest first. The first is stored inline;
    /// only while reads outrun the reader by more than a buffer do the others
    /// need an array, which goes when they do. So a connection between reads
    /// holds no allocation for its chunks (an array kept its buffer: 56 bytes
    /// per idle connection).
    struct Chunks {
        private var head: Chunk?
        /// The chunks after `head`, in order; empty while `head` is nil.
        private var rest: [Chunk] = []

        var isEmpty: Bool { head == nil }
        var first: Chunk? { head }
        var last: Chunk? { rest.last ?? head }

        mutating func append(_ chunk: Chunk) {
            if head == nil { head = chunk } else { rest.append(chunk) }
        }

        mutating func prepend(_ chunk: Chunk) {
            if let head { rest.insert(head, at: 0) }
            head = chunk
        }

        /// `count` more bytes were read onto the end of the last chunk.
        mutating func extendLast(by count: Int) {
            if rest.isEmpty { head!.end += count } else { rest[rest.count - 1].end += count }
        }

        /// `count` bytes (fewer than it holds) of the first chunk were consumed.
        mutating func advanceFirst(by count: Int) {
            head!.start += count
        }

        mutating func removeFirst() -> Chunk {
            defer {
                if rest.count <= 1 {
                    head = rest.first
                    rest = []
                } else {
                    head = rest.removeFirst()
                }
            }
            return head!
        }

        /// Empties the queue, handing each chunk to `body`.
        mutating func removeAll(_ body: (Chunk) -> Void) {
            if let head { body(head) }
            rest.forEach(body)
            head = nil
            rest = []
        }
    }

    /// The default of ``readHighWater``: 64 KiB, as SwiftNIO's write
    /// watermark; with ``defaultWriteHighWater`` and one read buffer, what a
    /// peer can make the server hold per connection is 192 KiB.
    static let defaultReadHighWater = 64 * 1024
    /// The default of ``writeHighWater``.
    static let defaultWriteHighWater = 64 * 1024

    // Every connection's state, ordered so that no padding is wasted: 152
    // bytes with the object's header, a 160-byte malloc chunk.
    let loop: EventLoop
    /// The `uv_tcp_t` or `uv_pipe_t` (per ``kind``), as the stream it is;
    /// `nil` once closed.
    private(set) var stream: UnsafeMutablePointer<uv_stream_t>?
    /// The chunks of unread bytes.
    @exclusivity(unchecked) var chunks = Chunks()
    /// Unread bytes in `chunks`; with `queuedWriteBytes`, what this connection
    /// holds against the loop's budget (see `ReadBufferPool`).
    @exclusivity(unchecked) var bufferedBytes = 0 {
        didSet { holdingChanged(from: oldValue + queuedWriteBytes) }
    }
    @exclusivity(unchecked) var queuedWriteBytes = 0 {
        didSet { holdingChanged(from: bufferedBytes + oldValue) }
    }
    let kind: Kind
    @exclusivity(unchecked) private var isReading = false
    /// Reading paused because the loop's connections hold more than its budget.
    @exclusivity(unchecked) private var isPausedForBudget = false
    @exclusivity(unchecked) private var reachedEnd = false
    /// Set by `close()` as `stream` goes nil, never cleared: see
    /// ``isClosedOnAnyThread``. With the other one-byte fields, before `readers`.
    private let closedFlag = Atomic<Bool>(false)
    /// The tasks waiting to read (one, unless several tasks read this stream).
    @exclusivity(unchecked) var readers = WaitingWakers()
    /// The tasks waiting for room to write, or for the queue to drain.
    @exclusivity(unchecked) var writers = WaitingWakers()
    /// A reader's lent buffer (see ``lend(_:)``); made by the first loan.
    @exclusivity(unchecked) var lending: Lending?
    /// See ``Uncommon``: made by the first error, limit, shutdown or connect.
    @exclusivity(unchecked) private var uncommon: Uncommon?

    /// ``uncommon``, made now if there is none yet.
    private var uncommonMade: Uncommon {
        if let uncommon { return uncommon }
        let made = Uncommon()
        uncommon = made
        return made
    }
    /// Stop reading from the socket once this much is buffered and unread.
    var readHighWater: Int { uncommon?.readHighWater ?? Self.defaultReadHighWater }
    /// Writes wait (pollWrite is pending) once this much is queued in libuv.
    var writeHighWater: Int { uncommon?.writeHighWater ?? Self.defaultWriteHighWater }
    /// The first error reading reported.
    /// Whether a read failed (a peer's reset): libuv then counts the stream
    /// neither readable nor writable.
    var hasFailedReading: Bool { readError != nil }

    private var readError: WeftError? {
        get { uncommon?.readError }
        set { uncommonMade.readError = newValue }
    }
    /// The first error writing reported.
    var writeError: WeftError? {
        get { uncommon?.writeError }
        set { uncommonMade.writeError = newValue }
    }
    /// Bytes ever queued with `uv_write`; of them, all but ``queuedWriteBytes``
    /// have been written (libuv writes its queue in order).
    var queuedWriteTotal: Int {
        get { uncommon?.queuedWriteTotal ?? 0 }
        set { uncommonMade.queuedWriteTotal = newValue }
    }
    /// Bytes of the `uv_write` queue written, in order, before any write
    /// failed or was cancelled (by a close): what a flush's mark must pass.
    var writtenWriteTotal: Int {
        get { uncommon?.writtenWriteTotal ?? 0 }
        set { uncommonMade.writtenWriteTotal = newValue }
    }
    var shutdownOperation: StreamRequest<uv_shutdown_t>? {
        get { uncommon?.shutdownOperation }
        set { uncommonMade.shutdownOperation = newValue }
    }
    var shutdownFlushMark: Int? {
        get { uncommon?.shutdownFlushMark }
        set { uncommonMade.shutdownFlushMark = newValue }
    }
    var closedByShutdown: Bool {
        get { uncommon?.closedByShutdown ?? false }
        set { uncommonMade.closedByShutdown = newValue }
    }
    var connectOperation: StreamRequest<uv_connect_t>? {
        get { uncommon?.connectOperation }
        set { uncommonMade.connectOperation = newValue }
    }
    /// See ``Uncommon/transfersInFlight``.
    var transfersInFlight: Int { uncommon?.transfersInFlight ?? 0 }

    /// A `sendfile` to this socket starts on a pool thread. Until
    /// ``endTransfer()``, the stream's writes, flushes and shutdowns wait:
    /// its future may be dropped while the kernel still sends (a pool thread
    /// cannot be stopped), and a write made meanwhile landed inside the
    /// file's range.
    func beginTransfer() {
        uncommonMade.transfersInFlight += 1
    }

    /// The `sendfile` begun by ``beginTransfer()`` returned (on the loop
    /// thread): the writes and flushes waiting for it go on.
    func endTransfer() {
        uncommonMade.transfersInFlight -= 1
        writers.wakeAll()
    }

    /// A new, unconnected TCP (or, for `.unixDomain` and `.pipe`, pipe) handle
    /// on `loop`; for `.tty`, a terminal handle on `descriptor`, which it then
    /// owns (the handle closes it, unless it is 0, 1 or 2).
    init(loop: EventLoop, kind: Kind = .tcp, descriptor: Int32 = -1) throws(WeftError) {
        self.loop = loop
        self.kind = kind
        stream = try makeStreamHandle(kind, on: loop, descriptor: descriptor)
    }

    deinit {
        close()
    }

    /// Whether the handle is closed: on the loop thread only.
    var isClosed: Bool { stream == nil }

    /// Whether the handle is closed, on any thread (the public `isClosed`):
    /// elsewhere than the loop thread it turns true once the loop has closed
    /// the handle, so after a `close()` handed to the loop, not at once.
    var isClosedOnAnyThread: Bool { closedFlag.load(ordering: .acquiring) }

    /// The handle as a `uv_tcp_t`: `nil` when closed or not TCP.
    var tcpHandle: UnsafeMutablePointer<uv_tcp_t>? {
        kind == .tcp ? stream.map { weft_stream_tcp($0) } : nil
    }

    /// Closes the handle (if open), wakes every waiting task so it sees the
    /// closed stream, and returns the read buffers to the pool.
    func close() {
        guard let stream else { return }
        self.stream = nil
        closedFlag.store(true, ordering: .releasing)
        if isPausedForBudget {
            isPausedForBudget = false
            loop.withReadBuffers { $0.forget(self) }
        }
        weft_close_and_free(weft_stream_handle(stream))
        loop.noteMemoryFreed()
        loop.withReadBuffers { pool in
            chunks.removeAll { pool.give($0.base) }
        }
        bufferedBytes = 0
        lending?.filled = 0  // unread, like the chunks; the lender takes its buffer back
        if let uncommon {
            uncommon.connectOperation?.waiting = WaitingWakers()
            uncommon.connectOperation = nil
            // The operation retains this connection: keeping it would make a cycle that
            // leaks every stream that was ever shut down. A request still in flight
            // keeps the operation (and this connection) alive until its callback runs.
            uncommon.shutdownOperation = nil
        }
        readers.wakeAll()
        writers.wakeAll()
    }

    func closedError(_ operation: String) -> WeftError {
        WeftError(.closed, operation: operation)
    }

    // MARK: - Reading

    func pollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        // Nothing asked, nothing to wait for (as `read(upTo: 0)`); waiting
        // for bytes it cannot take would then report 0, end of stream.
        if buffer.isEmpty { return .ready(.success(0)) }
        switch pollFillBuffer(&context) {
        case .pending: return .pending
        case .ready(.failure(let error)): return .ready(.failure(error))
        case .ready(.success(let available)):
            let count = min(available.count, buffer.count)
            if count > 0 {
                buffer.baseAddress!.copyMemory(from: available.baseAddress!, byteCount: count)
                consume(count)
            }
            return .ready(.success(count))
        }
    }

    /// The first buffered chunk; empty at end of stream.
    func pollFillBuffer(_ context: inout Context) -> Poll<Result<UnsafeRawBufferPointer, WeftError>> {
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        guard let stream else { return .ready(.failure(closedError("read"))) }
        if let lending, lending.filled > 0 { keepLentBytes() }
        if let first = chunks.first {
            return .ready(.success(UnsafeRawBufferPointer(start: first.base + first.start, count: first.end - first.start)))
        }
        if let readError { return .ready(.failure(readError)) }
        if reachedEnd {
            // A terminal's end of file (Ctrl-D) ends one read: the next reads
            // the terminal again, as `cat - -` does (it latched, every later
            // read ended at once).
            if kind == .tty { reachedEnd = false }
            return .ready(.success(UnsafeRawBufferPointer(start: nil, count: 0)))
        }
        if !isReading {
            // Called for every read: the owner is borrowed, not retained
            // (`didRead` wakes the readers last; see `withUnretainedHandleOwner`).
            let result = uv_read_start(stream, { handle, _, buffer in
                withUnretainedHandleOwner(handle, as: StreamConnection.self) { buffer!.pointee = $0.allocateReadBuffer() }
            }, { stream, count, buffer in
                withUnretainedHandleOwner(stream, as: StreamConnection.self) { $0.didRead(count: count, into: buffer!.pointee) }
            })
            if result == UV_ENOTCONN.rawValue && uv_is_readable(stream) == 0 {
                // libuv's ENOTCONN for a stream not open for reading.
                return .ready(.failure(WeftError(.invalidArgument, operation: "read",
                                                 detail: "ENOTCONN: the stream is not open for reading (the write end of a pipe, or a child's input)")))
            }
            if result < 0 {
                readError = WeftError(uvCode: result, operation: "read")
                return .ready(.failure(readError!))
            }
            isReading = true
        }
        readers.register(context.waker)?.wake()
        return Budget.refundingIfPending(.pending)
    }

    func consume(_ count: Int) {
        var remaining = count
        while remaining > 0, let first = chunks.first {
            let available = first.end - first.start
            if remaining < available {
                chunks.advanceFirst(by: remaining)
                break
            }
            remaining -= available
            let base = chunks.removeFirst().base
            loop.withReadBuffers { $0.give(base) }
        }
        bufferedBytes -= count - remaining
    }

    /// The alloc callback: a lent buffer still empty while nothing else is
    /// buffered (at most a pool buffer's size of it, so its bytes always fit one
    /// if they must move), the free tail of the last chunk if it has room (so
    /// small reads share a buffer), else a pooled buffer.
    private func allocateReadBuffer() -> uv_buf_t {
        guard loop.withReadBuffers({ $0.budgetAllowsRead(holding: bufferedBytes + queuedWriteBytes) }) else {
            return uv_buf_t(base: nil, len: 0)  // libuv then reports UV_ENOBUFS
        }
        if let lending, let base = lending.base, lending.filled == 0, chunks.isEmpty {
            return uv_buf_t(base: base.assumingMemoryBound(to: CChar.self),
                            len: min(lending.buffer!.count, ReadBufferPool.bufferSize))
        }
        if let last = chunks.last, ReadBufferPool.bufferSize - last.end >= 4096 {
            return uv_buf_t(base: (last.base + last.end).assumingMemoryBound(to: CChar.self),
                            len: ReadBufferPool.bufferSize - last.end)
        }
        return uv_buf_t(base: loop.withReadBuffers { $0.take() }.assumingMemoryBound(to: CChar.self),
                        len: ReadBufferPool.bufferSize)
    }

    /// The read callback: keep the bytes, stop at the high-water mark, wake the
    /// reader. Each wake is the last thing it does: letting go of a stale
    /// waker can free this connection (``withUnretainedHandleOwner(_:as:_:)``).
    private func didRead(count: Int, into buffer: uv_buf_t) {
        let base = UnsafeMutableRawPointer(buffer.base)
        let isLent = base != nil && base == lending?.base
        let isTail = chunks.last.map { base == $0.base + $0.end } ?? false
        if count > 0 {
            // A terminal is read on demand, one read (a line) per wait: read
            // on up to the high-water mark, as a socket is, it took the lines
            // typed later from the terminal's other readers (a child sharing
            // it, `readLine` once Weft is done with it).
            if kind == .tty { stopReading() }
            if isLent {
                lending!.filled = count
                readers.wakeAll()
                return
            }
            if isTail {
                chunks.extendLast(by: count)
            } else {
                chunks.append(Chunk(base: base!, start: 0, end: count))
            }
            bufferedBytes += count
            if bufferedBytes >= readHighWater { stopReading() }
        } else {
            if !isTail, !isLent, let base { loop.withReadBuffers { $0.give(base) } }
            if count == Int(UV_ENOBUFS.rawValue) {
                pauseForBudget()
                return  // the readers wait on
            } else if count == Int(UV_EOF.rawValue) {
                reachedEnd = true
                stopReading()
            } else if count < 0 {
                readError = WeftError(uvCode: Int32(count), operation: "read")
                stopReading()
            } else {
                return  // EAGAIN: nothing happened
            }
        }
        readers.wakeAll()
    }

    private func pauseForBudget() {
        stopReading()
        guard !isPausedForBudget else { return }
        isPausedForBudget = true
        loop.withReadBuffers { $0.pause(self) }
    }

    /// The budget has room again: the readers poll again, which reads again.
    func resumeReading() {
        isPausedForBudget = false
        readers.wakeAll()
    }

    /// Tells the loop's budget what this connection holds now; resumes its
    /// reading if it paused for the budget and now holds nothing.
    func holdingChanged(from before: Int) {
        let now = bufferedBytes + queuedWriteBytes
        loop.withReadBuffers { $0.holdingChanged(from: before, to: now) }
        if isPausedForBudget && now == 0 {
            loop.withReadBuffers { $0.forget(self) }
            resumeReading()
        }
    }

    private func stopReading() {
        if isReading, let stream { uv_read_stop(stream) }
        isReading = false
    }
}

extension StreamConnection {
    /// The backpressure limits of ``TCPStream/setBufferLimits(unread:queued:)``
    /// (and the Unix stream's): each from 1 KiB to 1 GiB, set on the loop
    /// thread while open. The writers waiting look again (as SwiftNIO
    /// re-evaluates writability when its watermarks change): under a raised
    /// mark a write waiting for room may have it now.
    func setBufferLimits(unread: Int, queued: Int) throws(WeftError) {
        if let error = wrongThread("setBufferLimits") { throw error }
        for (name, value) in [("unread", unread), ("queued", queued)] where !(1024...(1 << 30)).contains(value) {
            throw WeftError(.invalidArgument, operation: "setBufferLimits",
                            detail: "\(name) \(value) must be from 1024 to 1073741824 bytes")
        }
        guard !isClosed else { throw WeftError(.closed, operation: "setBufferLimits") }
        uncommonMade.readHighWater = unread
        uncommonMade.writeHighWater = queued
        writers.wakeAll()
    }
}

/// Each public stream's (``TCPStream``, ``UnixStream``, ``PipeStream``)
/// `AsyncBufRead` and `AsyncWrite`: the calling thread checked, then the one
/// machinery. A poll off the loop thread fails with `.wrongThread`.
extension StreamConnection {
    @inline(__always)
    func checkedPollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        if let error = wrongThread("read") { return .ready(.failure(error)) }
        return pollRead(&context, into: buffer)
    }

    @inline(__always)
    func checkedPollFillBuffer(_ context: inout Context) -> Poll<Result<UnsafeRawBufferPointer, WeftError>> {
        if let error = wrongThread("read") { return .ready(.failure(error)) }
        return pollFillBuffer(&context)
    }

    /// `consume` for `stream` (its type names the precondition's failure:
    /// it cannot report an error).
    @inline(__always)
    func checkedConsume(_ count: Int, by stream: AnyObject) {
        precondition(loop.isOnLoopThread, "\(type(of: stream)).consume called off its loop thread")
        consume(count)
    }

    @inline(__always)
    func checkedPollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        if let error = wrongThread("write") { return .ready(.failure(error)) }
        return pollWrite(&context, bytes)
    }

    /// ``flushMark`` on the loop thread; elsewhere, where the count may not be
    /// read, `Int.max`, a mark only an empty queue has passed (a flush polled
    /// there fails with `.wrongThread` anyway).
    @inline(__always)
    var checkedFlushMark: Int { loop.isOnLoopThread ? flushMark : .max }

    @inline(__always)
    func checkedPollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        if let error = wrongThread("flush") { return .ready(.failure(error)) }
        return pollFlush(&context)
    }

    /// ``pollFlush(_:through:operation:)`` for a write's wait.
    @inline(__always)
    func checkedPollFlush(_ context: inout Context, through mark: Int) -> Poll<Result<Void, WeftError>> {
        if let error = wrongThread("write") { return .ready(.failure(error)) }
        return pollFlush(&context, through: mark, operation: "write")
    }

    @inline(__always)
    func checkedPollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        if let error = wrongThread("shutdown") { return .ready(.failure(error)) }
        return pollShutdown(&context)
    }
}
