import CLibUV

/// A file's sequential reading (ahead) and writing (behind); see ``File``.
/// Touched on the file's loop thread only.
struct SequentialIO {
    /// With its own position: the offset of the next byte a reader takes,
    /// which is where the next write goes.
    var position: Int64
    /// The largest block moved at once.
    var bufferSize: Int {
        didSet { readSize = min(readSize, bufferSize) }
    }
    /// The size of the next read: it starts small, so that a small file
    /// costs a small buffer, and doubles up to `bufferSize` each time a read
    /// fills its block.
    var readSize: Int

    /// The block being handed out, and its unread part.
    var readBuffer: FileBuffer?
    var readStart = 0
    var readEnd = 0
    /// The reads ahead in flight, oldest first, each into a buffer of its
    /// own; owned by the file, not by a future: a dropped read leaves its
    /// bytes for the next one. Two with the file's own position (each at its
    /// offset, so a pool thread always has the next block to read when one
    /// finishes), one at the descriptor's position (two reads of a pipe on two
    /// threads could complete out of order).
    var readsInFlight: [(request: FileRequest, count: Int, offset: Int64)] = []
    var spareReadBuffer: FileBuffer?
    /// With its own position: the offset the next read ahead starts at.
    var nextReadOffset: Int64
    /// Starting a read ahead failed: reported after the bytes buffered before it.
    var readError: WeftError?

    /// The write behind in flight: `writeCount` bytes of its buffer from
    /// `writeStart`, at `writeOffset` (-1: the descriptor's position).
    var writeInFlight: FileRequest?
    var writeStart = 0
    var writeCount = 0
    var writeOffset: Int64 = -1
    var spareWriteBuffer: FileBuffer?
    /// The bytes of the last write behind that failed, not written (0 once
    /// another is submitted): a copy whose block it was reads them again.
    var unwritten = 0
    /// A copy's chunk on the pool reading or writing this file at its
    /// position (``FileCopy``), which moves the position when it ends: the
    /// writes and reads after it wait for it, even once the copy was dropped
    /// (they went to the old position, under the chunk's bytes).
    var transferInFlight: BlockingWork?

    init(position: Int64, bufferSize: Int) {
        self.position = position
        self.bufferSize = bufferSize
        readSize = min(Self.firstReadSize, bufferSize)
        nextReadOffset = position
    }

    /// The size of a file's first read.
    static let firstReadSize = 64 * 1024

    /// A buffer of at least `count` bytes (and at most a block), reusing
    /// `spare` when it is large enough.
    func buffer(for count: Int, reusing spare: FileBuffer?) -> FileBuffer {
        if let spare, spare.capacity >= count, spare.capacity <= bufferSize { return spare }
        return FileBuffer(capacity: count)
    }
}

extension File: AsyncBufRead, AsyncWrite {
    /// The unread bytes of the current block, reading the next one if it is
    /// used up (empty at end of file); the read ahead of the one after starts
    /// at once. See ``AsyncBufRead/pollFillBuffer(_:)``.
    public func pollFillBuffer(_ context: inout Context) -> Poll<Result<UnsafeRawBufferPointer, WeftError>> {
        // Closed, it fails even with a block read ahead (``close()``'s contract).
        if let error = refusal("read") { return .ready(.failure(error)) }
        while true {
            if sequential.readStart < sequential.readEnd {
                return .ready(.success(UnsafeRawBufferPointer(
                    start: sequential.readBuffer!.bytes + sequential.readStart,
                    count: sequential.readEnd - sequential.readStart)))
            }
            if let error = sequential.readError.take() { return .ready(.failure(error)) }
            if let (pending, requested, offset) = sequential.readsInFlight.first {
                guard pending.status != nil else {
                    pending.waiting.register(context.waker)?.wake()
                    return .pending
                }
                sequential.readsInFlight.removeFirst()
                if pending.result < requested {
                    // A failure, the end of the file or a short read: the
                    // reads after it asked for the wrong offset, or for nothing.
                    // A failed one read nothing: the next read asks for its offset again.
                    dropReadsAhead()
                    sequential.nextReadOffset = offset + Int64(max(pending.result, 0))
                }
                if let error = pending.error {
                    sequential.spareReadBuffer = pending.buffer
                    return .ready(.failure(error))
                }
                if pending.result == 0 {
                    // End of file, for now: the next read asks again (a file may grow).
                    sequential.spareReadBuffer = pending.buffer
                    return .ready(.success(UnsafeRawBufferPointer(start: nil, count: 0)))
                }
                if let used = sequential.readBuffer { sequential.spareReadBuffer = used }
                if pending.result == sequential.readSize { sequential.readSize = min(sequential.readSize * 2, sequential.bufferSize) }
                sequential.readBuffer = pending.buffer
                (sequential.readStart, sequential.readEnd) = (0, pending.result)
                if !handle.isClosed {
                    do { try startReadsAhead() } catch { sequential.readError = error }
                }
                continue
            }
            // Nothing read, nothing being read: wait for a write behind first
            // (it may write what is about to be read), then read.
            switch pollWritesDone(&context) {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success): break
            }
            do { try startReadsAhead() } catch { return .ready(.failure(error)) }
        }
    }

    /// Marks `count` bytes of the current block as read (none for a count
    /// of 0 or less, at most the block). Call it on the loop thread, after
    /// `pollFillBuffer` (a precondition, as a stream's, since it cannot
    /// report an error).
    public func consume(_ count: Int) {
        precondition(handle.loop.isOnLoopThread, "File.consume called off its loop thread")
        guard count > 0 else { return }
        let taken = min(count, sequential.readEnd - sequential.readStart)
        sequential.readStart += taken
        sequential.position += Int64(taken)
    }

    /// Copies the next bytes into `buffer`; 0 at end of file. See ``AsyncRead``.
    public func pollRead(_ context: inout Context, into buffer: UnsafeMutableRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        if buffer.isEmpty {
            if let error = refusal("read") { return .ready(.failure(error)) }
            return .ready(.success(0))
        }
        switch pollFillBuffer(&context) {
        case .pending: return .pending
        case .ready(.failure(let error)): return .ready(.failure(error))
        case .ready(.success(let bytes)):
            let count = min(bytes.count, buffer.count)
            if count > 0 { buffer.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: count) }
            consume(count)
            return .ready(.success(count))
        }
    }

    /// Starts reads ahead until as many are in flight as the file keeps.
    private func startReadsAhead() throws(WeftError) {
        let depth = hasOwnPosition ? 2 : 1
        while sequential.readsInFlight.count < depth {
            let count = sequential.readSize
            let buffer = sequential.buffer(for: count, reusing: sequential.spareReadBuffer.take())
            let offset = hasOwnPosition ? sequential.nextReadOffset : -1
            sequential.readsInFlight.append((try startRead(into: buffer, count: count, at: offset, operation: "read"), count, offset))
            if hasOwnPosition { sequential.nextReadOffset += Int64(count) }
        }
    }

    /// Forgets the reads ahead in flight, cancelling those a pool thread has
    /// not started (each owns its buffer until its callback); the tasks
    /// waiting on them poll again.
    func dropReadsAhead() {
        for read in sequential.readsInFlight { read.request.cancelWakingWaiters() }
        sequential.readsInFlight.removeAll()
    }

    /// Accepts up to a block of `bytes` (copied into the file's buffer) once
    /// the previous block was written, and hands them to a pool thread; an
    /// error of the previous block is returned here (or by ``pollFlush(_:)``).
    /// Drops what was read ahead (the file's position is where the reader was).
    public func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
        if let error = wrongThread("write") { return .ready(.failure(error)) }
        switch pollReadyToWrite(&context) {
        case .pending: return .pending
        case .ready(.failure(let error)): return .ready(.failure(error))
        case .ready(.success): break
        }
        if bytes.isEmpty { return .ready(.success(0)) }
        let count = min(bytes.count, sequential.bufferSize)
        let buffer = sequential.buffer(for: max(count, SequentialIO.firstReadSize), reusing: sequential.spareWriteBuffer.take())
        buffer.bytes.copyMemory(from: bytes.baseAddress!, byteCount: count)
        if let error = submitBlock(buffer, start: 0, count: count) { return .ready(.failure(error)) }
        return .ready(.success(count))
    }

    /// Ready once a block may be submitted: the previous one written, the
    /// file open, and (with its own position) what was read ahead dropped.
    func pollReadyToWrite(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        switch pollWritesDone(&context) {
        case .pending: return .pending
        case .ready(.failure(let error)): return .ready(.failure(error))
        case .ready(.success): break
        }
        if let error = refusal("write") { return .ready(.failure(error)) }
        // The write goes where the reader is, and so does the next read if
        // nothing is written after all.
        discardReadAhead()
        return .ready(.success(()))
    }

    /// With its own position, forgets what was read ahead (the reads in
    /// flight and the unread part of the block): the next read reads again
    /// where the reader is. For a change to the file under what was read: a
    /// sequential write, and a positional write or a truncate when it
    /// completes (a read ahead that ran alongside may have read the old bytes).
    func discardReadAhead() {
        guard hasOwnPosition else { return }
        dropReadsAhead()
        (sequential.readStart, sequential.readEnd) = (0, 0)
        sequential.readError = nil
        sequential.nextReadOffset = sequential.position
    }

    /// Hands `count` bytes of `buffer` from `start` to a pool thread as the
    /// write behind; only after ``pollReadyToWrite(_:)`` was ready.
    func submitBlock(_ buffer: FileBuffer, start: Int, count: Int) -> WeftError? {
        let offset = hasOwnPosition ? sequential.position : -1
        do {
            sequential.writeInFlight = try startWrite(from: buffer, start: start, count: count, at: offset, operation: "write")
        } catch {
            return error
        }
        (sequential.writeStart, sequential.writeCount, sequential.writeOffset) = (start, count, offset)
        sequential.unwritten = 0
        if hasOwnPosition {
            sequential.position += Int64(count)
            sequential.nextReadOffset = sequential.position
        }
        return nil
    }

    /// Takes the unread part of the current block out of the file, buffer
    /// and all (for ``FileCopy``, which hands it to a writer instead of
    /// copying it); only after ``pollFillBuffer(_:)`` returned bytes.
    func takeBlock() -> (buffer: FileBuffer, start: Int, count: Int) {
        let block = (sequential.readBuffer!, sequential.readStart, sequential.readEnd - sequential.readStart)
        sequential.readBuffer = nil
        consume(block.2)
        (sequential.readStart, sequential.readEnd) = (0, 0)
        return block
    }

    /// Ready once every accepted byte was written (with the error, if the
    /// last block failed).
    public func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        if let error = wrongThread("flush") { return .ready(.failure(error)) }
        return pollWritesDone(&context)
    }

    /// Flushes. A file has no write direction to close apart from itself: it
    /// stays open (``close()`` closes it).
    public func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        pollFlush(&context)
    }

    /// Waits for the write behind, writing the rest of a short write, and
    /// for a copy's chunk on this file (``SequentialIO/transferInFlight``).
    func pollWritesDone(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        if let transfer = sequential.transferInFlight {
            guard transfer.status != nil else {
                transfer.waiting.register(context.waker)?.wake()
                return .pending
            }
            sequential.transferInFlight = nil
        }
        while let pending = sequential.writeInFlight {
            guard pending.status != nil else {
                pending.waiting.register(context.waker)?.wake()
                return .pending
            }
            sequential.writeInFlight = nil
            let written = pending.result
            if written < 0 || written >= sequential.writeCount || written == 0 {
                sequential.spareWriteBuffer = pending.buffer
            }
            if let error = pending.error { return unwindWrite(error) }
            guard written < sequential.writeCount else { continue }
            guard written > 0 else {
                return unwindWrite(WeftError(.libuv(code: UV_EIO.rawValue), operation: "write \(path)",
                                             detail: "the system wrote nothing of \(sequential.writeCount) bytes"))
            }
            sequential.writeStart += written
            sequential.writeCount -= written
            if sequential.writeOffset >= 0 { sequential.writeOffset += Int64(written) }
            if handle.isClosed {
                // Its descriptor went with the last request in flight: the rest
                // cannot land, and its number may name another file by now.
                return unwindWrite(WeftError(.closed, operation: "write \(path)",
                                             detail: "closed before the last \(sequential.writeCount) bytes were written"))
            }
            do {
                sequential.writeInFlight = try startWrite(
                    from: pending.buffer!, start: sequential.writeStart, count: sequential.writeCount,
                    at: sequential.writeOffset, operation: "write")
            } catch {
                return unwindWrite(error)
            }
        }
        return .ready(.success(()))
    }

    /// The write behind failed with `writeCount` of its bytes unwritten: the
    /// file's position goes back to the first of them, as a descriptor's
    /// would, so that a retry writes there and a read reads from there (the
    /// next operation skipped them).
    private func unwindWrite(_ error: WeftError) -> Poll<Result<Void, WeftError>> {
        if hasOwnPosition {
            sequential.position -= Int64(sequential.writeCount)
            sequential.nextReadOffset = sequential.position
        }
        (sequential.unwritten, sequential.writeCount) = (sequential.writeCount, 0)
        return .ready(.failure(error))
    }
}
