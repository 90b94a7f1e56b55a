import CLibUV

/// Writing: `uv_try_write` first, the rest copied and queued with `uv_write`
/// under a high-water mark; flush and half-close.
extension StreamConnection {
    /// Accepts what the kernel takes at once (`uv_try_write`) plus, copied and
    /// queued with `uv_write`, as much of the rest as fits under the high-water
    /// mark; returns how many bytes it accepted (pending when the queue is
    /// full). Takes from the task's ``Budget``: a task whose writes the
    /// kernel keeps taking yields, as one whose reads keep finding bytes.
    func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        guard let accepted = acceptWrite(bytes) else {
            writers.register(context.waker)?.wake()
            return Budget.refundingIfPending(.pending)
        }
        return .ready(accepted)
    }

    /// ``pollWrite(_:_:)`` without a waker: how many bytes it accepts now, or
    /// nil when the queue is full or a file's bytes are still going out
    /// (``beginTransfer()``): the write must wait. The async write calls
    /// it first on the loop thread, with no future (docs/ARCHITECTURE.md,
    /// "The async fast paths").
    @inline(__always)
    func acceptWrite(_ bytes: UnsafeRawBufferPointer) -> Result<Int, WeftError>? {
        guard let stream else { return .failure(closedError("write")) }
        if let writeError { return .failure(writeError) }
        if shutdownOperation != nil {
            return .failure(WeftError(.closed, operation: "write", detail: "the stream was shut down for writing"))
        }
        if queuedWriteBytes >= writeHighWater || transfersInFlight > 0 { return nil }
        guard !bytes.isEmpty else { return .success(0) }
        var written = 0
        if queuedWriteBytes == 0 {
            var buffer = uv_buf_t(base: UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: CChar.self)),
                                  len: bytes.count)
            let result = uv_try_write(stream, &buffer, 1)
            if result > 0 {
                written = Int(result)
            } else if result == UV_EPIPE.rawValue && uv_is_writable(stream) == 0 && !hasFailedReading {
                // libuv's EPIPE for a stream not open for writing: not the
                // reader gone, which EPIPE means otherwise. (A read error,
                // a peer's reset, makes a stream neither readable nor
                // writable in libuv: that EPIPE is the peer's.)
                return .failure(WeftError(.invalidArgument, operation: "write",
                                          detail: "EPIPE: the stream is not open for writing (the read end of a pipe, or a child's output)"))
            } else if result != UV_EAGAIN.rawValue && result != UV_ENOSYS.rawValue {
                writeError = WeftError(uvCode: result, operation: "write")
                return .failure(writeError!)
            }
        }
        // Room is left (the queue is under the mark), so what the kernel did
        // not take is queued, at least in part: `written` ends above 0.
        if written < bytes.count {
            let remainder = UnsafeRawBufferPointer(rebasing: bytes[written..<min(bytes.count, written + writeHighWater - queuedWriteBytes)])
            let operation = StreamRequest<uv_write_t>(connection: self, copying: remainder)
            var buffer = uv_buf_t(base: operation.buffer!.assumingMemoryBound(to: CChar.self), len: remainder.count)
            let result = uv_write(operation.request, stream, &buffer, 1) { request, status in
                let operation = StreamRequest<uv_write_t>.finish(request!)
                operation.connection.didWrite(count: operation.bufferCount, status: status)
            }
            if result < 0 {
                operation.abandon()
                writeError = WeftError(uvCode: result, operation: "write")
                return .failure(writeError!)
            }
            queuedWriteBytes += remainder.count
            queuedWriteTotal += remainder.count
            written += remainder.count
        }
        return .success(written)
    }

    func didWrite(count: Int, status: Int32) {
        queuedWriteBytes -= count
        if status >= 0 {
            // libuv writes its queue in order: bytes count as written only
            // while every one queued before them was (none after a failed or
            // cancelled write).
            if writtenWriteTotal == queuedWriteTotal - queuedWriteBytes - count {
                writtenWriteTotal += count
            }
        } else if status != UV_ECANCELED.rawValue && writeError == nil {
            writeError = WeftError(uvCode: status, operation: "write")
        }
        // Every completion, not only one that leaves room under the mark: a
        // flush waits for its own bytes, and after a lowered mark the queue
        // can stay above it long after they were written (and an error must
        // reach every waiting task).
        writers.wakeAll()
    }

    /// Ready once the queue is empty.
    func pollFlush(_ context: inout Context, operation: String = "flush") -> Poll<Result<Void, WeftError>> {
        pollFlush(&context, through: flushMark, operation: operation)
    }

    /// A mark of everything queued so far: a write waits until the queue has
    /// drained past the mark it read after its last byte
    /// (``pollFlush(_:through:operation:)``), not until the queue is empty,
    /// which another task writing on could put off for as long as it writes.
    /// On a closed stream `Int.max`, a mark nothing passes: a flush begun
    /// there fails with `.closed`.
    var flushMark: Int { isClosed ? .max : queuedWriteTotal }

    /// Ready once what was queued before `mark` has been written: with
    /// success once it was, even if a later write failed or the stream has
    /// been closed since (the bytes reached the OS).
    func pollFlush(_ context: inout Context, through mark: Int, operation: String) -> Poll<Result<Void, WeftError>> {
        if transfersInFlight > 0 && !isClosed {
            // A file's bytes still going out (``beginTransfer()``).
            writers.register(context.waker)?.wake()
            return .pending
        }
        if writtenWriteTotal >= mark { return .ready(.success(())) }
        if let writeError { return .ready(.failure(writeError)) }
        guard !isClosed else { return .ready(.failure(closedError(operation))) }
        if queuedWriteBytes == 0 { return .ready(.success(())) }
        writers.register(context.waker)?.wake()
        return .pending
    }

    /// Flushes, then half-closes with `uv_shutdown`: the peer reads end of
    /// stream; this side can still read. A pipe or a terminal, which has no
    /// half-close (`ENOTSOCK`), is closed instead.
    func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        if closedByShutdown { return .ready(.success(())) }
        if shutdownOperation == nil {
            let mark = shutdownFlushMark ?? flushMark
            shutdownFlushMark = mark
            guard case .ready(let flushed) = pollFlush(&context, through: mark, operation: "shutdown") else { return .pending }
            if case .failure(let error) = flushed { return .ready(.failure(error)) }
            guard let stream else { return .ready(.failure(closedError("shutdown"))) }
            let operation = StreamRequest<uv_shutdown_t>(connection: self)
            let result = uv_shutdown(operation.request, stream) { request, status in
                let operation = StreamRequest<uv_shutdown_t>.finish(request!)
                operation.connection.closeIfNoHalfClose(status: status)
                operation.complete(status: status)
            }
            if result < 0 {
                operation.abandon()
                if result == UV_ENOTCONN.rawValue && uv_is_writable(stream) == 0 && !hasFailedReading {
                    // libuv's ENOTCONN for a stream not open for writing, as
                    // a write's EPIPE above: no socket, and nothing gone.
                    return .ready(.failure(WeftError(.invalidArgument, operation: "shutdown",
                        detail: "ENOTCONN: the stream is not open for writing (the read end of a pipe, or a child's output)")))
                }
                return .ready(.failure(WeftError(uvCode: result, operation: "shutdown")))
            }
            shutdownOperation = operation
        }
        let operation = shutdownOperation!
        guard let status = operation.status else {
            operation.waiting.register(context.waker)?.wake()
            return .pending
        }
        // `ENOTCONN` included: the peer reset the connection, so its reader
        // will never see the end of stream (uv_shutdown fails with it at
        // once instead when a read had seen the reset).
        if status < 0 {
            return .ready(.failure(WeftError(uvCode: status, operation: "shutdown")))
        }
        return .ready(.success(()))
    }

    /// A pipe (or terminal) has no half-close (`uv_shutdown` ends with
    /// `ENOTSOCK` once the queue has drained): its handle is closed instead,
    /// so that the reader reads end of file. In the shutdown's callback, not
    /// in the poll that sees it: a shutdown future dropped meanwhile (a
    /// timeout) left the write end open, the reader waiting for ever.
    fileprivate func closeIfNoHalfClose(status: Int32) {
        guard status == UV_ENOTSOCK.rawValue, kind == .pipe || kind == .tty, !isClosed else { return }
        closedByShutdown = true
        close()
    }
}
