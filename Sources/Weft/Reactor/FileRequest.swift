import CLibUV

/// Memory a file read fills or a file write sends, apart from any Swift array:
/// a request holds it until its callback, so a dropped future never leaves a
/// pool thread writing into freed memory.
///
/// `@unchecked Sendable` because it is touched by one thread at a time: the
/// loop thread fills or reads it, a pool thread uses it only between a
/// request's submission and its callback (libuv's work queue orders the two),
/// and the loop touches it again only after the callback.
final class FileBuffer: @unchecked Sendable {
    let bytes: UnsafeMutableRawPointer
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        bytes = .allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit {
        bytes.deallocate()
    }
}

/// One `uv_fs_t` in flight on libuv's thread pool (open, read, write, stat,
/// fsync, rename, scandir, …), owned as every request is
/// (``RequestOperation``: retained from submission to the callback, which
/// libuv always calls, with `UV_ECANCELED` if cancelled before a pool thread
/// took it).
///
/// The callback copies out what the request's result points into (the stat
/// buffer, the directory entries, the path `mkdtemp` made), then calls
/// `uv_fs_req_cleanup`, which frees that memory.
///
/// A request on an open file retains its ``OpenFile``, so the descriptor is
/// not closed (and its number not reused) while a pool thread may use it.
final class FileRequest: RequestOperation<uv_fs_t> {
    /// What failed, for errors: the operation and its path (`open /tmp/x`).
    let operation: String
    /// The open file the request uses, kept open until the callback.
    let file: OpenFile?
    /// A second file the request uses (the destination of a `sendfile`), kept open likewise.
    let otherFile: OpenFile?
    /// The bytes a read fills or a write sends; see ``FileBuffer``.
    let buffer: FileBuffer?
    /// The request's result: bytes read or written, the descriptor opened,
    /// or a negative libuv error. Set by the callback.
    private(set) var result = 0
    /// `stat`/`fstat`: the status, copied out of the request.
    private(set) var fileStatus: uv_stat_t?
    /// `mkdtemp`: the directory made.
    private(set) var createdPath: String?
    /// `scandir`: each entry's name and type.
    private(set) var entries: [(name: String, type: uv_dirent_type_t)] = []
    /// What the callback copies out of the request before freeing it.
    enum Capture {
        case nothing, status, createdPath, entries, openedDescriptor
    }

    let capture: Capture
    /// Set when nobody will take an opened descriptor (its future was dropped
    /// before the open finished): the callback closes it.
    var closesOpenedDescriptor = false

    private init(operation: String, capture: Capture, file: OpenFile?, otherFile: OpenFile?, buffer: FileBuffer?) {
        self.operation = operation
        self.capture = capture
        self.file = file
        self.otherFile = otherFile
        self.buffer = buffer
    }

    /// The request's failure, if it failed.
    var error: WeftError? {
        guard result < 0 else { return nil }
        if file != nil { return WeftError(fileCode: Int32(clamping: result), operation: operation) }
        return WeftError(uvCode: Int32(clamping: result), operation: operation)
    }

    /// Submits a request through `submit` (a `uv_fs_*` call given the request
    /// and the callback), on `loop`.
    static func start(
        _ operation: String, capture: Capture = .nothing, file: OpenFile? = nil, otherFile: OpenFile? = nil, buffer: FileBuffer? = nil,
        _ submit: (UnsafeMutablePointer<uv_fs_t>, uv_fs_cb) -> Int32
    ) throws(WeftError) -> FileRequest {
        let request = FileRequest(operation: operation, capture: capture, file: file, otherFile: otherFile, buffer: buffer)
        file?.requestsInFlight += 1
        otherFile?.requestsInFlight += 1
        let code = submit(request.request, fileRequestDone)
        if code < 0 {
            file?.requestFinished()
            otherFile?.requestFinished()
            uv_fs_req_cleanup(request.request)
            request.abandon()
            throw WeftError(uvCode: code, operation: operation)
        }
        return request
    }

    /// Copies out what the finished request points to, then frees it.
    fileprivate func record() {
        result = uv_fs_get_result(request)
        if result >= 0 {
            switch capture {
            case .status:
                fileStatus = uv_fs_get_statbuf(request).pointee
            case .createdPath:
                createdPath = uv_fs_get_path(request).map { String(cString: $0) }
            case .entries:
                var entry = uv_dirent_t()
                while uv_fs_scandir_next(request, &entry) == 0 {
                    entries.append((String(cString: entry.name), entry.type))
                }
            case .openedDescriptor where closesOpenedDescriptor:
                OpenFile.closeDescriptor(uv_file(result), loop: request.pointee.loop)
            default:
                break
            }
        }
        uv_fs_req_cleanup(request)
    }
}

/// Every file request's callback: records the result, lets its file close
/// once nothing uses it, and wakes the waiting tasks.
private let fileRequestDone: uv_fs_cb = { request in
    let operation = FileRequest.finish(request!)
    operation.record()
    operation.file?.requestFinished()
    operation.otherFile?.requestFinished()
    operation.complete(status: operation.result < 0 ? Int32(clamping: operation.result) : 0)
}

/// An open file descriptor on a loop, and when to close it: the owner of the
/// descriptor behind a ``File``.
///
/// Closed (with `uv_fs_close`, on the pool) once ``close()`` was called *and*
/// no request that uses it is in flight: a pool thread reading a descriptor
/// that another thread closed could read a file opened later under the same
/// number. A descriptor adopted with `closesDescriptor: false` is never closed.
/// Touched on the loop thread only.
final class OpenFile {
    let loop: EventLoop
    let descriptor: uv_file
    /// The path it was opened with (or `fd N`), for errors.
    let path: String
    /// Whether Weft closes it: false for an adopted descriptor its owner
    /// keeps (standard input and output).
    let closesDescriptor: Bool
    /// Requests using the descriptor whose callback has not run.
    var requestsInFlight = 0
    /// Set by ``close()``: no new request may use the descriptor.
    private(set) var isClosed = false
    private var closeSubmitted = false

    init(loop: EventLoop, descriptor: uv_file, path: String, closesDescriptor: Bool) {
        self.loop = loop
        self.descriptor = descriptor
        self.path = path
        self.closesDescriptor = closesDescriptor
    }

    /// No new request may use the descriptor; it is closed once those in
    /// flight finished. Loop thread only.
    func close() {
        isClosed = true
        closeIfUnused()
    }

    /// ``close()`` on the loop thread: at once when called there, else handed
    /// to the loop's inbox as a job.
    func closeOnLoop() {
        if loop.closesHere {
            close()
        } else {
            loop.enqueue(CloseFile(file: UnsafeTransfer(value: self)))
        }
    }

    func requestFinished() {
        requestsInFlight -= 1
        closeIfUnused()
    }

    private func closeIfUnused() {
        guard isClosed, requestsInFlight == 0, !closeSubmitted else { return }
        closeSubmitted = true
        if closesDescriptor { Self.closeDescriptor(descriptor, loop: loop.uvLoop) }
    }

    /// Closes `descriptor` on `loop`'s pool, ignoring errors (nobody waits
    /// for them: `fsync` is the way to learn that data reached the disk);
    /// synchronously if the request cannot be submitted.
    static func closeDescriptor(_ descriptor: uv_file, loop: UnsafeMutablePointer<uv_loop_t>!) {
        do {
            _ = try FileRequest.start("close") { request, done in uv_fs_close(loop, request, descriptor, done) }
        } catch {
            _ = weft_close(descriptor)
        }
    }

    /// After its shutdown nothing runs the loop again: closes at once, unless
    /// a request in flight may still use the descriptor (then it stays open
    /// until the process exits rather than risk a reused number).
    func closeAfterShutdown() {
        isClosed = true
        guard requestsInFlight == 0, !closeSubmitted else { return }
        closeSubmitted = true
        if closesDescriptor { _ = weft_close(descriptor) }
    }
}

/// A file's close, handed to its loop from another thread (the thread that
/// dropped the ``File`` no longer uses it).
private struct CloseFile: LoopJob {
    let file: UnsafeTransfer<OpenFile>

    func run() {
        file.value.close()
    }

    func loopClosed() {
        file.value.loop.runLateClose { file.value.closeAfterShutdown() }
    }
}

extension WeftError {
    /// The error of `code` from a request on an open file. `EBADF` there is
    /// the file not opened for what was asked (its descriptor stays open
    /// while a request uses it): refused as an invalid argument, not as the
    /// `.closed` that `EBADF` means for a handle.
    init(fileCode code: Int32, operation: String) {
        if code == UV_EBADF.rawValue {
            self.init(.invalidArgument, operation: operation,
                      detail: "EBADF (bad file descriptor): the file is not open for this (open it with .read to read, .write or .append to write)")
        } else {
            self.init(uvCode: code, operation: operation)
        }
    }
}
