import CLibUV
import CWeftSupport

/// The owner of one connected `uv_tcp_t`: its inbound buffer, its outbound
/// queue accounting, and the wakers of the tasks using it. Confined to the loop
/// thread.
///
/// Handle lifetime (invariant 4): the `uv_tcp_t` is allocated apart from this
/// object; `handle.data` points back here unretained; `close()` clears `data`
/// and closes the handle, which is freed in its close callback. Requests
/// (`uv_write_t`, `uv_shutdown_t`, `uv_connect_t`) are owned by operation
/// objects that retain this core until their callback runs, so a callback never
/// reaches freed memory. Whether the connection stays *open* is decided by the
/// public ``TCPStream`` wrapper, whose deinit calls `close()`.
final class StreamCore: TCPHandleOwner {
    /// A pooled read buffer holding unread bytes in `start..<end`.
    struct Chunk {
        let base: UnsafeMutableRawPointer
        var start: Int
        var end: Int
    }

    /// Stop reading from the socket once this much is buffered and unread.
    static let readHighWater = 256 * 1024
    /// Writes wait (pollWrite is pending) once this much is queued in libuv.
    static let writeHighWater = 1024 * 1024

    let loop: LoopCore
    private(set) var handle: UnsafeMutablePointer<uv_tcp_t>?

    // Inbound.
    @exclusivity(unchecked) private var chunks: [Chunk] = []
    @exclusivity(unchecked) private var bufferedBytes = 0
    @exclusivity(unchecked) private var isReading = false
    @exclusivity(unchecked) private var reachedEnd = false
    @exclusivity(unchecked) private var readError: WeftError?
    /// The tasks waiting to read (one, unless several tasks read this stream).
    @exclusivity(unchecked) private var readers = WaitingWakers()
    /// The caller's buffer of a waiting async `read(into:)`, lent (see
    /// ``lend(_:)``): with nothing buffered, libuv reads straight into it.
    @exclusivity(unchecked) private var lent: [UInt8]?
    /// Where `lent`'s storage starts (to recognise it in the read callback).
    @exclusivity(unchecked) private var lentBase: UnsafeMutableRawPointer?
    /// Bytes libuv read into `lent`; they come before every chunk.
    @exclusivity(unchecked) private var lentFilled = 0
    /// Numbers the loans, so a reader takes back only its own buffer.
    @exclusivity(unchecked) private var loans: UInt64 = 0

    // Outbound.
    @exclusivity(unchecked) private var queuedWriteBytes = 0
    @exclusivity(unchecked) private var writeError: WeftError?
    /// The tasks waiting for room to write, or for the queue to drain.
    @exclusivity(unchecked) private var writers = WaitingWakers()
    private var shutdownOperation: RequestOperation<uv_shutdown_t>?

    /// A connect in flight, told to forget its waiting task if the stream closes first.
    var connectOperation: RequestOperation<uv_connect_t>?

    /// A new, unconnected TCP handle on `loop`.
    init(loop: LoopCore) throws(WeftError) {
        self.loop = loop
        handle = try makeHandle(on: loop)
    }

    deinit {
        close()
    }

    var isClosed: Bool { handle == nil }

    var stream: UnsafeMutablePointer<uv_stream_t>? { handle.map { weft_tcp_stream($0) } }

    /// Closes the handle (if open), wakes every waiting task so it sees the
    /// closed stream, and returns the read buffers to the pool.
    func close() {
        guard let handle else { return }
        self.handle = nil
        weft_close_and_free(weft_tcp_handle(handle))
        loop.streamsClosed += 1
        for chunk in chunks { loop.readBuffers.give(chunk.base) }
        chunks.removeAll()
        bufferedBytes = 0
        lentFilled = 0  // unread, like the chunks; the lender takes its buffer back
        connectOperation?.waiting = WaitingWakers()
        connectOperation = nil
        // The operation retains this core: keeping it would make a cycle that
        // leaks every stream that was ever shut down. A request still in flight
        // keeps the operation (and this core) alive until its callback runs.
        shutdownOperation = nil
        readers.wakeAll()
        writers.wakeAll()
    }

    private func closedError(_ operation: String) -> WeftError {
        WeftError(.closed, operation: operation)
    }

    // MARK: - Reading

    func pollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
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
        guard let stream else { return .ready(.failure(closedError("read"))) }
        if lentFilled > 0 { keepLentBytes() }
        if let first = chunks.first {
            return .ready(.success(UnsafeRawBufferPointer(start: first.base + first.start, count: first.end - first.start)))
        }
        if let readError { return .ready(.failure(readError)) }
        if reachedEnd { return .ready(.success(UnsafeRawBufferPointer(start: nil, count: 0))) }
        if !isReading {
            let result = uv_read_start(stream, { handle, _, buffer in
                StreamCore.from(handle).map { buffer!.pointee = $0.allocateReadBuffer() }
            }, { stream, count, buffer in
                guard let core = StreamCore.from(stream) else { return }
                core.didRead(count: count, into: buffer!.pointee)
            })
            if result < 0 {
                readError = WeftError(uvCode: result, operation: "read")
                return .ready(.failure(readError!))
            }
            isReading = true
        }
        readers.register(context.waker)
        return .pending
    }

    func consume(_ count: Int) {
        var remaining = count
        while remaining > 0, !chunks.isEmpty {
            let available = chunks[0].end - chunks[0].start
            if remaining < available {
                chunks[0].start += remaining
                break
            }
            remaining -= available
            loop.readBuffers.give(chunks.removeFirst().base)
        }
        bufferedBytes -= count - remaining
    }

    private static func from<T>(_ handle: UnsafeMutablePointer<T>?) -> StreamCore? {
        guard let data = UnsafeMutableRawPointer(handle)?.assumingMemoryBound(to: uv_handle_t.self).pointee.data else {
            return nil
        }
        return Unmanaged<StreamCore>.fromOpaque(data).takeUnretainedValue()
    }

    /// Lends `buffer` (taking it, leaving `[]`) for libuv to read into while
    /// nothing is buffered, so the bytes reach the reader with no pool buffer
    /// and no copy; returns the loan's number for ``reclaim(_:)``. Call it after
    /// a read came back pending. The loan ends when the reader reclaims it, or
    /// when another loan or reader comes first: bytes already in the buffer then
    /// move to the front of the chunks, so none is lost.
    ///
    /// The storage pointer outlives `withUnsafeMutableBytes` because this object
    /// holds the only reference to the array (so that call made no copy) and
    /// never mutates it through Swift while lent: the storage stays put and
    /// alive until ``reclaim(_:)`` or ``keepLentBytes()`` hands it on.
    func lend(_ buffer: inout [UInt8]) -> UInt64 {
        if lent != nil { keepLentBytes() }
        var taken: [UInt8] = []
        swap(&taken, &buffer)
        lentBase = taken.withUnsafeMutableBytes { $0.baseAddress }
        lent = taken
        loans &+= 1
        return loans
    }

    /// Takes back loan `number`'s buffer and how many bytes libuv read into it;
    /// `nil` when the loan already ended.
    func reclaim(_ number: UInt64) -> (buffer: [UInt8], count: Int)? {
        guard number == loans, let buffer = lent.take() else { return nil }
        defer { (lentBase, lentFilled) = (nil, 0) }
        return (buffer, lentFilled)
    }

    /// Ends the loan without its reader: copies the bytes read into the lent
    /// buffer to a chunk in front of the others.
    private func keepLentBytes() {
        guard let (buffer, count) = reclaim(loans), count > 0 else { return }
        let base = loop.readBuffers.take()
        buffer.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: count) }
        chunks.insert(Chunk(base: base, start: 0, end: count), at: 0)
        bufferedBytes += count
    }

    /// The alloc callback: a lent buffer still empty while nothing else is
    /// buffered (at most a pool buffer's size of it, so its bytes always fit one
    /// if they must move), the free tail of the last chunk if it has room (so
    /// small reads share a buffer), else a pooled buffer.
    private func allocateReadBuffer() -> uv_buf_t {
        if let lentBase, lentFilled == 0, chunks.isEmpty {
            return uv_buf_t(base: lentBase.assumingMemoryBound(to: CChar.self),
                            len: min(lent!.count, ReadBufferPool.bufferSize))
        }
        if let last = chunks.last, ReadBufferPool.bufferSize - last.end >= 4096 {
            return uv_buf_t(base: (last.base + last.end).assumingMemoryBound(to: CChar.self),
                            len: ReadBufferPool.bufferSize - last.end)
        }
        return uv_buf_t(base: loop.readBuffers.take().assumingMemoryBound(to: CChar.self),
                        len: ReadBufferPool.bufferSize)
    }

    /// The read callback: keep the bytes, stop at the high-water mark, wake the reader.
    private func didRead(count: Int, into buffer: uv_buf_t) {
        let base = UnsafeMutableRawPointer(buffer.base)
        let isLent = base != nil && base == lentBase
        let isTail = chunks.last.map { base == $0.base + $0.end } ?? false
        if count > 0 {
            if isLent {
                lentFilled = count
                readers.wakeAll()
                return
            }
            if isTail {
                chunks[chunks.count - 1].end += count
            } else {
                chunks.append(Chunk(base: base!, start: 0, end: count))
            }
            bufferedBytes += count
            if bufferedBytes >= Self.readHighWater { stopReading() }
        } else {
            if !isTail, !isLent, let base { loop.readBuffers.give(base) }
            if count == Int(UV_EOF.rawValue) {
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

    private func stopReading() {
        if isReading, let stream { uv_read_stop(stream) }
        isReading = false
    }

    // MARK: - Writing

    /// Accepts what the kernel takes at once (`uv_try_write`) plus, copied and
    /// queued with `uv_write`, as much of the rest as fits under the high-water
    /// mark; returns how many bytes it accepted (pending when the queue is full).
    func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        guard let stream else { return .ready(.failure(closedError("write"))) }
        if let writeError { return .ready(.failure(writeError)) }
        if shutdownOperation != nil {
            return .ready(.failure(WeftError(.closed, operation: "write", detail: "the stream was shut down for writing")))
        }
        if queuedWriteBytes >= Self.writeHighWater {
            writers.register(context.waker)
            return .pending
        }
        guard !bytes.isEmpty else { return .ready(.success(0)) }
        var written = 0
        if queuedWriteBytes == 0 {
            var buffer = uv_buf_t(base: UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: CChar.self)),
                                  len: bytes.count)
            let result = uv_try_write(stream, &buffer, 1)
            if result > 0 {
                written = Int(result)
            } else if result != UV_EAGAIN.rawValue && result != UV_ENOSYS.rawValue {
                writeError = WeftError(uvCode: result, operation: "write")
                return .ready(.failure(writeError!))
            }
        }
        let room = Self.writeHighWater - queuedWriteBytes
        if written < bytes.count && room > 0 {
            let remainder = UnsafeRawBufferPointer(rebasing: bytes[written..<min(bytes.count, written + room)])
            let operation = RequestOperation<uv_write_t>(stream: self, copying: remainder)
            var buffer = uv_buf_t(base: operation.buffer!.assumingMemoryBound(to: CChar.self), len: remainder.count)
            let result = uv_write(operation.request, stream, &buffer, 1) { request, status in
                let operation = RequestOperation<uv_write_t>.finish(request!)
                operation.stream.didWrite(count: operation.bufferCount, status: status)
            }
            if result < 0 {
                operation.abandon()
                writeError = WeftError(uvCode: result, operation: "write")
                return .ready(.failure(writeError!))
            }
            queuedWriteBytes += remainder.count
            written += remainder.count
        }
        if written == 0 {
            writers.register(context.waker)
            return .pending
        }
        return .ready(.success(written))
    }

    private func didWrite(count: Int, status: Int32) {
        queuedWriteBytes -= count
        if status < 0 && status != UV_ECANCELED.rawValue && writeError == nil {
            writeError = WeftError(uvCode: status, operation: "write")
        }
        if queuedWriteBytes < Self.writeHighWater { writers.wakeAll() }
    }

    func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        if let writeError { return .ready(.failure(writeError)) }
        guard !isClosed else { return .ready(.failure(closedError("flush"))) }
        if queuedWriteBytes == 0 { return .ready(.success(())) }
        writers.register(context.waker)
        return .pending
    }

    /// Flushes, then half-closes with `uv_shutdown`: the peer reads end of
    /// stream; this side can still read.
    func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        if shutdownOperation == nil {
            guard case .ready(let flushed) = pollFlush(&context) else { return .pending }
            if case .failure(let error) = flushed { return .ready(.failure(error)) }
            guard let stream else { return .ready(.failure(closedError("shutdown"))) }
            let operation = RequestOperation<uv_shutdown_t>(stream: self)
            let result = uv_shutdown(operation.request, stream) { request, status in
                let operation = RequestOperation<uv_shutdown_t>.finish(request!)
                operation.complete(status: status)
            }
            if result < 0 {
                operation.abandon()
                return .ready(.failure(WeftError(uvCode: result, operation: "shutdown")))
            }
            shutdownOperation = operation
        }
        let operation = shutdownOperation!
        guard let status = operation.status else {
            operation.waiting.register(context.waker)
            return .pending
        }
        if status < 0 && status != UV_ENOTCONN.rawValue {
            return .ready(.failure(WeftError(uvCode: status, operation: "shutdown")))
        }
        return .ready(.success(()))
    }

    // MARK: - Options and addresses

    func setNoDelay(_ enabled: Bool) throws(WeftError) {
        guard let handle else { throw closedError("setNoDelay") }
        try check(uv_tcp_nodelay(handle, enabled ? 1 : 0), "uv_tcp_nodelay")
    }

    func setKeepAlive(_ enabled: Bool, delaySeconds: UInt32) throws(WeftError) {
        guard let handle else { throw closedError("setKeepAlive") }
        try check(uv_tcp_keepalive(handle, enabled ? 1 : 0, delaySeconds), "uv_tcp_keepalive")
    }

    func address(peer: Bool) throws(WeftError) -> SocketAddress {
        let operation = peer ? "peerAddress" : "localAddress"
        guard let handle else { throw closedError(operation) }
        return try socketAddress(operation: operation) { address, length in
            peer ? uv_tcp_getpeername(handle, address, length) : uv_tcp_getsockname(handle, address, length)
        }
    }
}

/// A libuv request in flight (`uv_write_t`, `uv_shutdown_t`, `uv_connect_t`)
/// and what it needs: the stream it works on (retained, so the callback never
/// reaches freed memory), and for writes the bytes, copied and owned here.
///
/// `request.data` holds a retained reference to this object from submission to
/// the callback (`finish`), which libuv calls even after a close (with
/// `UV_ECANCELED`). If submission fails, `abandon()` gives that reference back.
final class RequestOperation<Request> {
    let request: UnsafeMutablePointer<Request>
    let stream: StreamCore
    let buffer: UnsafeMutableRawPointer?
    let bufferCount: Int
    /// The callback's status; `nil` until it ran.
    var status: Int32?
    /// Whom to wake when the callback ran: every task awaiting it (two tasks
    /// may await one shutdown).
    var waiting = WaitingWakers()

    init(stream: StreamCore, copying bytes: UnsafeRawBufferPointer? = nil) {
        self.stream = stream
        request = .allocate(capacity: 1)
        if let bytes, !bytes.isEmpty {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 1)
            buffer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            self.buffer = buffer
            bufferCount = bytes.count
        } else {
            buffer = nil
            bufferCount = 0
        }
        UnsafeMutableRawPointer(request).assumingMemoryBound(to: uv_req_t.self).pointee.data =
            Unmanaged.passRetained(self).toOpaque()
    }

    deinit {
        buffer?.deallocate()
        request.deallocate()
    }

    /// Takes back the reference held by a completed request.
    static func finish(_ request: UnsafeMutablePointer<Request>) -> RequestOperation {
        let data = UnsafeMutableRawPointer(request).assumingMemoryBound(to: uv_req_t.self).pointee.data!
        return Unmanaged<RequestOperation>.fromOpaque(data).takeRetainedValue()
    }

    /// Gives back the request's reference when submitting it failed.
    func abandon() {
        Unmanaged.passUnretained(self).release()
    }

    func complete(status: Int32) {
        self.status = status
        waiting.wakeAll()
    }
}
