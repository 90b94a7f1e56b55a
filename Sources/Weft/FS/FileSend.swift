import CLibUV
import CWeftSupport

/// Sends a range of a file to a connected stream with `sendfile`, the kernel
/// copying the bytes from the page cache to the socket. See
/// ``File/sendFuture(to:offset:count:)-(TCPStream,_,_)``.
///
/// It first flushes what was written to the stream before (so the bytes keep
/// their order), then calls `sendfile(2)` on a pool thread on a duplicate of
/// the socket's descriptor (so closing the stream meanwhile cannot hand the
/// number to another file). The socket does not block: when its buffer is
/// full, `sendfile` says `EAGAIN`, and the next block (256 KiB) goes through
/// the stream's ordinary write, which waits for the socket on the loop; then
/// `sendfile` goes on. No pool thread ever waits for a slow peer (libuv 1.44's
/// `uv_fs_sendfile` to a socket would: it falls back to a loop that polls the
/// socket on the pool thread). Yields the bytes sent: `count`, or fewer if the file ends first.
///
/// The file and the stream must belong to one loop (the send drives both
/// from it): a file opened on another loop than the stream's is refused with
/// `.invalidArgument`, before anything is sent (open the file on the stream's
/// loop, or read it there).
///
/// **Cancellation:** not cancel-safe: a prefix of the range may have been
/// sent. A `sendfile` a pool thread started goes on to its end when the
/// future is dropped; the stream's next writes, flushes and shutdown wait
/// for it, so they land after every byte of the range it sends.
public struct FileSend<Writer: AsyncWrite>: Future {
    enum Stage {
        case flushing
        case sending(SubmittedRequest<uv_work_t, BlockingWork>, SendfileResult)
        case reading(SubmittedRequest<uv_fs_t, FileRequest>)
        case writing(WriteAll<Writer>)
    }

    let file: File
    var stream: Writer
    let connection: StreamConnection
    var offset: Int64
    var remaining: Int
    var sent = 0
    var stage = Stage.flushing
    /// What the flush before the next request waits for: the bytes written
    /// to the stream before it began (a ``AsyncWrite/flushMark``, read at
    /// its first poll). Waiting for the queue to empty, it waited for ever
    /// beside a task that kept writing.
    var flushMark: Int?
    /// The duplicate of the socket's descriptor, closed after the last request.
    var socket: DuplicateSocket?
    /// Set when it yields its result: polled again, it fails (it went on
    /// sending, past the range it was given).
    var isDone = false

    /// The block read and written the ordinary way when the socket is full.
    static var fallbackBlock: Int { 256 * 1024 }

    init(file: File, stream: Writer, connection: StreamConnection, offset: Int64, count: Int) {
        self.file = file
        self.stream = stream
        self.connection = connection
        self.offset = offset
        remaining = count
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<Int, WeftError>> {
        if isDone { return .ready(.failure(.polledAgain("sendfile \(file.path)"))) }
        return pollSend(&context).markingDone(&isDone)
    }

    private mutating func pollSend(_ context: inout Context) -> Poll<Result<Int, WeftError>> {
        guard offset >= 0, remaining >= 0 else {
            return .ready(.failure(WeftError(.invalidArgument, operation: "sendfile \(file.path)",
                                             detail: "negative offset \(offset) or count \(remaining)")))
        }
        guard file.handle.loop === connection.loop else {
            // Polled on either loop, it would touch the other's state (it
            // failed with `.wrongThread` deep in the stream's poll).
            return .ready(.failure(WeftError(.invalidArgument, operation: "sendfile \(file.path)",
                                             detail: "the file and the stream belong to different loops; open the file on the stream's loop")))
        }
        while true {
            switch stage {
            case .flushing:
                if flushMark == nil { flushMark = stream.flushMark }
                switch stream.pollFlush(&context, through: flushMark!) {
                case .pending: return .pending
                case .ready(.failure(let error)): return .ready(.failure(error))
                case .ready(.success): flushMark = nil
                }
                // Nothing to send still says that the file is closed.
                if let error = file.refusal("sendfile") { return .ready(.failure(error)) }
                if remaining == 0 { return finish() }
                switch startSending() {
                case .failure(let error): return .ready(.failure(error))
                case .success(let (request, result)): stage = .sending(request, result)
                }
            case .sending(let request, let outcome):
                if let error = request.wrongThread("sendfile \(file.path)") { return .ready(.failure(error)) }
                let operation = request.operation
                guard operation.status != nil else {
                    operation.waiting.register(context.waker)?.wake()
                    return .pending
                }
                if operation.status! < 0 {  // cancelled before a pool thread took it
                    return .ready(.failure(WeftError(uvCode: operation.status!, operation: "sendfile \(file.path)")))
                }
                let result = outcome.value
                if result == Int(UV_EAGAIN.rawValue) {
                    // The socket is full: one block the ordinary way, which waits for it.
                    if let error = file.refusal("sendfile") { return .ready(.failure(error)) }
                    let count = min(remaining, Self.fallbackBlock)
                    do {
                        stage = .reading(SubmittedRequest(try file.startRead(
                            into: FileBuffer(capacity: count), count: count, at: offset, operation: "sendfile"), on: file.handle.loop))
                    } catch {
                        return .ready(.failure(error))
                    }
                    continue
                }
                if result < 0 { return .ready(.failure(WeftError(fileCode: Int32(clamping: result), operation: "sendfile \(file.path)"))) }
                if result == 0 { return finish() }  // the end of the file
                advance(by: result)
                if remaining == 0 { return finish() }
                switch startSending() {
                case .failure(let error): return .ready(.failure(error))
                case .success(let (next, nextResult)): stage = .sending(next, nextResult)
                }
            case .reading(let request):
                if let error = request.wrongThread("sendfile \(file.path)") { return .ready(.failure(error)) }
                let operation = request.operation
                guard operation.status != nil else {
                    operation.waiting.register(context.waker)?.wake()
                    return .pending
                }
                if let error = operation.error { return .ready(.failure(error)) }
                if operation.result == 0 { return finish() }
                let bytes = Array(UnsafeRawBufferPointer(start: operation.buffer!.bytes, count: operation.result))
                advance(by: bytes.count)
                stage = .writing(stream.writeAll(bytes))
            case .writing(var write):
                let result = write.poll(&context)
                stage = .writing(write)
                switch result {
                case .pending: return .pending
                case .ready(.failure(let error)): return .ready(.failure(error))
                case .ready(.success): stage = .flushing
                }
            }
        }
    }

    private mutating func advance(by count: Int) {
        sent += count
        offset += Int64(count)
        remaining -= count
    }

    private mutating func finish() -> Poll<Result<Int, WeftError>> {
        socket = nil
        return .ready(.success(sent))
    }

    /// Starts `sendfile(2)` of what remains on a pool thread (see
    /// `weft_sendfile`: not `uv_fs_sendfile`, which would wait for the socket
    /// there), duplicating the socket's descriptor first. Both descriptors
    /// count the work as a request in flight, so neither is closed under it.
    private mutating func startSending()
        -> Result<(SubmittedRequest<uv_work_t, BlockingWork>, SendfileResult), WeftError> {
        if let error = file.refusal("sendfile") { return .failure(error) }
        // Before every block, not only the first: a stream closed since sends
        // nothing more, as its queued writes are dropped. (The duplicate this
        // sends on kept the connection open, and a send whose peer kept up,
        // never waiting, went on to its end.)
        if connection.isClosed {
            socket = nil
            return .failure(connection.closedError("sendfile"))
        }
        if socket == nil {
            let descriptor: Int32
            do { descriptor = try connection.descriptor("sendfile") } catch { return .failure(error) }
            let duplicate = weft_dup_cloexec(descriptor)
            guard duplicate >= 0 else {
                return .failure(WeftError(uvCode: -weft_errno(), operation: "sendfile \(file.path) (dup)"))
            }
            socket = DuplicateSocket(OpenFile(loop: file.handle.loop, descriptor: duplicate, path: "socket", closesDescriptor: true))
        }
        let (source, target) = (file.handle, socket!.file)
        // At most what one call can move: past it, an offset plus `Int.max` ("to the end")
        // overflowed the kernel's file position check (EINVAL).
        let (input, output, offset, count) = (source.descriptor, target.descriptor, offset, min(remaining, File.largestTransfer))
        let result = SendfileResult()
        let connection = connection
        source.requestsInFlight += 1
        target.requestsInFlight += 1
        connection.beginTransfer()
        let finished = {
            source.requestFinished()
            target.requestFinished()
            connection.endTransfer()
        }
        do {
            let work = try BlockingWork.start(on: source.loop, done: finished) {
                result.value = Int(weft_sendfile(output, input, offset, count))
            }
            return .success((SubmittedRequest(work, on: source.loop), result))
        } catch {
            finished()
            return .failure(WeftError(error.kind, operation: "sendfile \(file.path)", detail: error.detail))
        }
    }
}

/// What a `sendfile(2)` on a pool thread returned: bytes sent or a negative
/// libuv error. `@unchecked Sendable` because the pool thread writes it once
/// before the work's completion and the loop reads it only after (libuv's
/// work queue orders the two).
final class SendfileResult: @unchecked Sendable {
    var value = 0
}

/// A duplicate of a socket's descriptor for `sendfile`: closed when the send
/// ends or is dropped, once no request uses it.
final class DuplicateSocket {
    let file: OpenFile

    init(_ file: OpenFile) {
        self.file = file
    }

    deinit {
        file.closeOnLoop()
    }
}

extension File {
    /// A future that sends `count` bytes of this file from `offset` to the
    /// TCP `stream` with `sendfile` (see ``FileSend``); it yields how many it
    /// sent (fewer if the file ends first). The async form is
    /// ``send(to:offset:count:)-(TCPStream,_,_)``.
    public func sendFuture(to stream: TCPStream, offset: Int64 = 0, count: Int) -> FileSend<TCPStream> {
        FileSend(file: self, stream: stream, connection: stream.connection, offset: offset, count: count)
    }

    /// A future that sends `count` bytes of this file from `offset` to the
    /// Unix domain `stream` with `sendfile` (see ``FileSend``). The async form
    /// is ``send(to:offset:count:)-(UnixStream,_,_)``.
    public func sendFuture(to stream: UnixStream, offset: Int64 = 0, count: Int) -> FileSend<UnixStream> {
        FileSend(file: self, stream: stream, connection: stream.connection, offset: offset, count: count)
    }
}
