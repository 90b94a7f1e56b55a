import CLibUV

/// The error for a path holding a NUL character, which C would silently cut
/// (and so act on another path), if it holds one.
func nulInPath(_ path: String, operation: String) -> WeftError? {
    path.utf8.contains(0)
        ? WeftError(.invalidArgument, operation: "\(operation) \(path)", detail: "the path contains a NUL character")
        : nil
}

/// Opens a file on the pool (`uv_fs_open`). See ``File/openFuture(_:options:permissions:)``.
///
/// A copy made after the first poll shares the open in flight: the first
/// copy to complete takes the file, and the others fail with
/// `.invalidArgument` (a second `File` would close the descriptor under it).
///
/// **Cancellation:** dropping it cancels the open if a pool thread has not
/// started it; if one has, the descriptor it opens is closed when it arrives.
public struct FileOpen: Future {
    let path: String
    let options: FileOpenOptions
    let permissions: FilePermissions
    var pending: PendingOpen?
    /// Set when it yields its result: polled again, it fails (a second
    /// `File` on the same descriptor would close it under the first).
    var isDone = false

    public mutating func poll(_ context: inout Context) -> Poll<Result<File, WeftError>> {
        if isDone {
            return .ready(.failure(.polledAgain("open \(path)")))
        }
        return pollOpen(&context).markingDone(&isDone)
    }

    private mutating func pollOpen(_ context: inout Context) -> Poll<Result<File, WeftError>> {
        if pending == nil {
            if let error = nulInPath(path, operation: "open") { return .ready(.failure(error)) }
            if let conflict = options.conflict {
                return .ready(.failure(WeftError(.invalidArgument, operation: "open \(path)", detail: conflict)))
            }
            guard let loop = EventLoop.current else { return .ready(.failure(.outsideRuntime("open \(path)"))) }
            if let error = loop.refusesNewHandle(operation: "open \(path)") { return .ready(.failure(error)) }
            let (path, flags, mode) = (path, options.flags, Int32(bitPattern: permissions.rawValue))
            do {
                pending = PendingOpen(loop: loop, request: try FileRequest.start("open \(path)", capture: .openedDescriptor) { request, done in
                    uv_fs_open(loop.uvLoop, request, path, flags, mode, done)
                })
            } catch {
                return .ready(.failure(error))
            }
        }
        let pending = pending!
        if let error = pending.loop.wrongThread("open \(path)", detail: "it was started on another loop") {
            return .ready(.failure(error))
        }
        guard pending.request.status != nil else {
            pending.request.waiting.register(context.waker)?.wake()
            return .pending
        }
        if let error = pending.request.error { return .ready(.failure(error)) }
        guard !pending.isTaken else {
            return .ready(.failure(WeftError(.invalidArgument, operation: "open \(path)", detail: "polled after a copy of it completed")))
        }
        pending.isTaken = true
        let handle = OpenFile(loop: pending.loop, descriptor: uv_file(pending.request.result), path: path, closesDescriptor: true)
        return .ready(.success(File(handle: handle, usesDescriptorPosition: options.contains(.append))))
    }
}

/// An open in flight: a descriptor nobody took is closed.
final class PendingOpen {
    let loop: EventLoop
    let request: FileRequest
    /// Set when a copy of the future took the descriptor as its `File`.
    var isTaken = false

    init(loop: EventLoop, request: FileRequest) {
        self.loop = loop
        self.request = request
    }

    /// On the loop (``EventLoop/onLoop(_:)``): dropped on another thread (in
    /// a `selectOk`'s rest an await returned there), it raced the open's
    /// callback over the request, and libuv's count of the loop's requests.
    deinit {
        guard !isTaken else { return }
        let (request, loop) = (request, loop)
        loop.onLoop {
            if request.status == nil {
                request.closesOpenedDescriptor = true
                request.cancel()
            } else if request.result >= 0 {
                OpenFile.closeDescriptor(uv_file(request.result), loop: loop.uvLoop)
            }
        }
    }
}

/// One request on the pool whose result becomes a value: `stat`, `fsync`,
/// `ftruncate`, `rename`, `unlink`, `mkdir`, `mkdtemp`, `scandir`,
/// `sendfile`, each built by ``File`` or ``FileSystem``.
///
/// **Cancellation:** dropping it cancels the request if a pool thread has
/// not started it (nothing happens then); one already started runs to the
/// end and its result is dropped: a rename, a removal or a new directory may
/// have happened all the same.
public struct FileOperation<Value>: Future {
    let operation: String
    /// What its result needs copied out of the request.
    var capture: FileRequest.Capture = .nothing
    /// The file it works on, if it works on one (checked for its thread and for being closed).
    let file: File?
    /// A second file it uses (the destination of a `sendfile`), checked likewise.
    var otherFile: File? = nil
    /// The paths it names, checked for NUL characters.
    let paths: [String]
    /// Why its arguments are refused, if they are: it then fails without a request.
    var invalidArgument: String? = nil
    /// Whether it waits for the file's writes in flight before it starts (a
    /// truncate, a sync): the sequential write behind, and a copy's chunk
    /// (``SequentialIO/transferInFlight``), even one whose copy was dropped.
    var waitsForWrites = false
    let submit: (UnsafeMutablePointer<uv_loop_t>, UnsafeMutablePointer<uv_fs_t>, uv_fs_cb) -> Int32
    let finish: (FileRequest) -> Value
    var request: SubmittedRequest<uv_fs_t, FileRequest>?

    public mutating func poll(_ context: inout Context) -> Poll<Result<Value, WeftError>> {
        if request == nil, waitsForWrites, let file {
            if let error = file.wrongThread(operation) { return .ready(.failure(error)) }
            switch file.pollWritesDone(&context) {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success): break
            }
        }
        if request == nil {
            switch start() {
            case .failure(let error): return .ready(.failure(error))
            case .success(let submitted): request = submitted
            }
        }
        if let error = request!.wrongThread(request!.operation.operation) { return .ready(.failure(error)) }
        let operation = request!.operation
        guard operation.status != nil else {
            operation.waiting.register(context.waker)?.wake()
            return .pending
        }
        if let error = operation.error { return .ready(.failure(error)) }
        return .ready(.success(finish(operation)))
    }

    /// Submits the request, on the file's loop or the current one.
    private func start() -> Result<SubmittedRequest<uv_fs_t, FileRequest>, WeftError> {
        let loop: EventLoop
        let name: String
        if let file {
            if let error = file.refusal(operation) ?? otherFile?.refusal(operation) { return .failure(error) }
            if let invalidArgument {
                return .failure(WeftError(.libuv(code: UV_EINVAL.rawValue), operation: "\(operation) \(file.path)", detail: invalidArgument))
            }
            loop = file.handle.loop
            name = "\(operation) \(file.path)"
        } else {
            if let error = paths.lazy.compactMap({ nulInPath($0, operation: self.operation) }).first { return .failure(error) }
            guard let current = EventLoop.current else {
                return .failure(.outsideRuntime("\(operation) \(paths.joined(separator: " -> "))"))
            }
            loop = current
            name = "\(operation) \(paths.joined(separator: " -> "))"
        }
        let submit = submit
        let uvLoop = loop.uvLoop
        do {
            return .success(SubmittedRequest(try FileRequest.start(
                name, capture: capture, file: file?.handle, otherFile: otherFile?.handle
            ) { request, done in submit(uvLoop, request, done) }, on: loop))
        } catch {
            return .failure(error)
        }
    }
}

/// Reads up to a count of bytes, at an offset or sequentially. See
/// ``File/readFuture(upTo:)`` and ``File/readFuture(upTo:at:)``.
///
/// **Cancellation:** a sequential read is cancel-safe (the bytes stay in the
/// file's read ahead). A positional read not started is cancelled; one
/// started finishes into a buffer the request owns, then is dropped.
public struct FileRead: Future {
    let file: File
    let maxLength: Int
    /// nil: sequentially.
    let offset: Int64?
    var request: SubmittedRequest<uv_fs_t, FileRequest>?

    public mutating func poll(_ context: inout Context) -> Poll<Result<[UInt8], WeftError>> {
        guard maxLength >= 0, (offset ?? 0) >= 0 else {
            return .ready(.failure(WeftError(.invalidArgument, operation: "read \(file.path)",
                                             detail: "negative length \(maxLength) or offset \(offset ?? 0)")))
        }
        guard let offset else { return pollSequential(&context) }
        if request == nil {
            if let error = file.refusal("read") { return .ready(.failure(error)) }
            if maxLength == 0 { return .ready(.success([])) }
            do {
                let count = min(maxLength, File.largestPositionalRead)
                request = SubmittedRequest(try file.startRead(
                    into: FileBuffer(capacity: count), count: count, at: offset, operation: "read"), on: file.handle.loop)
            } catch {
                return .ready(.failure(error))
            }
        }
        if let error = request!.wrongThread("read \(file.path)") { return .ready(.failure(error)) }
        let operation = request!.operation
        guard operation.status != nil else {
            operation.waiting.register(context.waker)?.wake()
            return .pending
        }
        if let error = operation.error { return .ready(.failure(error)) }
        return .ready(.success(Array(UnsafeRawBufferPointer(start: operation.buffer!.bytes, count: operation.result))))
    }

    private func pollSequential(_ context: inout Context) -> Poll<Result<[UInt8], WeftError>> {
        if maxLength == 0 {
            // Nothing to read, but a closed file still says so.
            if let error = file.refusal("read") { return .ready(.failure(error)) }
            return .ready(.success([]))
        }
        switch file.pollFillBuffer(&context) {
        case .pending: return .pending
        case .ready(.failure(let error)): return .ready(.failure(error))
        case .ready(.success(let bytes)):
            let taken = Array(bytes.prefix(maxLength))
            file.consume(taken.count)
            return .ready(.success(taken))
        }
    }
}

/// Writes all of some bytes at an offset (`pwrite`, again for the rest of a
/// short write). See ``File/writeFuture(_:at:)``. As each request completes,
/// what the file read ahead is dropped, so that its sequential reads see the
/// bytes written.
///
/// **Cancellation:** not cancel-safe: a request a pool thread started still
/// writes (all of its block, or a prefix), and what was read ahead may not
/// show it.
public struct FileWriteAt: Future {
    let file: File
    let bytes: ArraySlice<UInt8>
    let offset: Int64
    var written = 0
    var buffer: FileBuffer?
    var request: SubmittedRequest<uv_fs_t, FileRequest>?

    public mutating func poll(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        guard offset >= 0 else {
            return .ready(.failure(WeftError(.invalidArgument, operation: "write \(file.path)", detail: "negative offset \(offset)")))
        }
        // Nothing to write, but a closed file still says so.
        if bytes.isEmpty, let error = file.refusal("write") { return .ready(.failure(error)) }
        while written < bytes.count {
            if let request {
                if let error = request.wrongThread("write \(file.path)") { return .ready(.failure(error)) }
                let operation = request.operation
                guard operation.status != nil else {
                    operation.waiting.register(context.waker)?.wake()
                    return .pending
                }
                self.request = nil
                // It may have written under what was read ahead, even failing.
                file.discardReadAhead()
                if let error = operation.error { return .ready(.failure(error)) }
                guard operation.result > 0 else {
                    return .ready(.failure(WeftError(.libuv(code: UV_EIO.rawValue), operation: "write \(file.path)",
                                                     detail: "the system wrote nothing of \(bytes.count - written) bytes")))
                }
                written += operation.result
                continue
            }
            if let error = file.refusal("write") { return .ready(.failure(error)) }
            if buffer == nil {
                // Linux's pwrite on a descriptor opened to append writes at the
                // end whatever the offset, and says nothing: the bytes landed
                // elsewhere than asked.
                let flags = weft_status_flags(file.descriptor)
                if flags >= 0 && flags & O_APPEND != 0 {
                    return .ready(.failure(WeftError(.invalidArgument, operation: "write \(file.path)",
                                                     detail: "a file opened to append writes at its end, not at offset \(offset); write without an offset, or open it without .append")))
                }
                let copy = FileBuffer(capacity: bytes.count)
                bytes.withUnsafeBytes { copy.bytes.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                buffer = copy
            }
            do {
                request = SubmittedRequest(try file.startWrite(
                    from: buffer!, start: written, count: bytes.count - written, at: offset + Int64(written), operation: "write"),
                                           on: file.handle.loop)
            } catch {
                return .ready(.failure(error))
            }
        }
        return .ready(.success(()))
    }
}

extension File {
    /// A future that opens `path` with `options` (creating it with
    /// `permissions` where ``FileOpenOptions/create`` says so), on the loop
    /// that first polls it. The async form is ``open(_:options:permissions:)``.
    public static func openFuture(
        _ path: String, options: FileOpenOptions = .read, permissions: FilePermissions = .defaultFile
    ) -> FileOpen {
        FileOpen(path: path, options: options, permissions: permissions)
    }

    /// A future of the next bytes, at most `maxLength` (empty at end of file),
    /// read sequentially. The async form is ``read(upTo:)``.
    public func readFuture(upTo maxLength: Int = 64 * 1024) -> FileRead {
        FileRead(file: self, maxLength: maxLength, offset: nil)
    }

    /// A future of at most `maxLength` bytes read at `offset` (`pread`);
    /// fewer at the end of the file, and at most 64 MiB at once (the buffer
    /// is allocated before the read). The async form is ``read(upTo:at:)``.
    public func readFuture(upTo maxLength: Int, at offset: Int64) -> FileRead {
        FileRead(file: self, maxLength: maxLength, offset: offset)
    }

    /// A future that writes all of `bytes` at `offset` (`pwrite`); the
    /// sequential reads after it see them (what was read ahead is dropped).
    /// The async form is ``write(_:at:)``.
    public func writeFuture(_ bytes: [UInt8], at offset: Int64) -> FileWriteAt {
        FileWriteAt(file: self, bytes: bytes[...], offset: offset)
    }

    /// A future that writes all of `bytes` sequentially and waits until they
    /// are written (``AsyncWrite/writeAll(_:)-([UInt8])``). The async form is ``write(_:)``.
    public func writeFuture(_ bytes: [UInt8]) -> WriteAll<File> {
        writeAll(bytes)
    }

    /// A future of the file's status (`fstat`). The async form is ``status()``.
    public func statusFuture() -> FileOperation<FileStatus> {
        let descriptor = descriptor
        return FileOperation(operation: "fstat", capture: .status, file: self, paths: [], submit: { loop, request, done in
            uv_fs_fstat(loop, request, descriptor, done)
        }, finish: { FileStatus($0.fileStatus!) })
    }

    /// A future that waits until the file's data and metadata reached the
    /// disk (`fsync`), once the bytes sequential writes accepted before it
    /// were written (failing with a failed write's error, as a flush does).
    /// The async form is ``sync()``.
    public func syncFuture() -> FileOperation<Void> {
        let descriptor = descriptor
        return FileOperation(operation: "fsync", file: self, paths: [], waitsForWrites: true, submit: { loop, request, done in
            uv_fs_fsync(loop, request, descriptor, done)
        }, finish: { _ in })
    }

    /// A future that cuts or extends the file to `size` bytes (`ftruncate`),
    /// once the bytes sequential writes accepted before it, and a dropped
    /// copy's chunk, were written (after it, they extended the file again);
    /// the sequential reads after it see the new size (what was read ahead is
    /// dropped). The async form is ``truncate(to:)``.
    public func truncateFuture(to size: Int64) -> FileOperation<Void> {
        let descriptor = descriptor
        return FileOperation(operation: "ftruncate", file: self, paths: [], waitsForWrites: true, submit: { loop, request, done in
            uv_fs_ftruncate(loop, request, descriptor, size, done)
        }, finish: { _ in self.discardReadAhead() })
    }

    /// A future that copies `count` bytes of this file from `offset` to
    /// `destination`, in the kernel (`copy_file_range`) where it can, without
    /// passing them through the process; it yields how many it copied (fewer
    /// only at the end of this file). They are written as a sequential write
    /// of `destination` is: at its position, after the writes before, its
    /// position advancing by them (a file opened to append appends them).
    /// This file's own position does not move. Within one regular file (two
    /// `File`s open on it), a range written after where its reading starts and
    /// before where it ends (it would read bytes it overwrote) fails with
    /// `.invalidArgument`. A destination that is a pipe
    /// or a blocking socket makes its pool thread wait until the reader
    /// makes room (to a connection, use
    /// ``sendFuture(to:offset:count:)-(TCPStream,_,_)``). The async form is
    /// ``send(to:offset:count:)-(File,_,_)``.
    ///
    /// **Cancellation:** as ``FileCopy``'s: what a pool thread started is
    /// still copied, and `destination`'s next writes wait for it.
    public func sendFuture(to destination: File, offset: Int64 = 0, count: Int) -> FileCopy {
        FileCopy(reader: self, writer: destination, range: (offset, count))
    }
}
