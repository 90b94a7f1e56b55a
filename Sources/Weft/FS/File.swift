import CLibUV

/// An open file on a Weft runtime, read and written on libuv's thread pool
/// (`uv_fs_*`): regular files block in the kernel, so no event loop can wait
/// for them, and each operation is one round trip to a pool thread.
///
/// Open one with ``open(_:options:permissions:)`` (or
/// ``openFuture(_:options:permissions:)``), or adopt a descriptor already open
/// with ``init(adoptingDescriptor:closesDescriptor:path:runtime:)``.
///
/// - **At an offset:** ``read(upTo:at:)`` and ``write(_:at:)`` read and write
///   where they are told (`pread`/`pwrite`), independent of each other and of
///   the sequential position.
/// - **Sequentially:** it is a byte stream (``AsyncRead``, ``AsyncBufRead``,
///   ``AsyncWrite``), so `copy(from:to:)` copies a file to a socket or a socket
///   to a file. Reading reads ahead: when a block is handed out, the next one is
///   already being read into a second buffer. Writing writes behind: a write
///   copies the bytes into the file's buffer, hands them to a pool thread and
///   returns; ``flush()`` waits for them (and reports their error). Each block
///   is ``bufferSize`` bytes (``defaultBufferSize``, measured in
///   docs/BENCHMARKS.md, "Files").
///   An adopted descriptor, a file opened with ``FileOpenOptions/append``, a
///   character device and a descriptor without a position (a pipe, a
///   terminal) are read and written at the descriptor's own position, one
///   request at a time; otherwise (a regular file, a block device) the file keeps its own, and
///   writing (sequentially or at an offset) and truncating drop what was read
///   ahead, so that the reads after see the change.
/// - **Errors** are ``WeftError``s naming the operation and the path:
///   `open /tmp/missing: ENOENT (no such file or directory)`; switch on
///   ``WeftError/code`` (`.notFound`, `.permissionDenied`, `.isDirectory`, …).
///
/// The file belongs to the loop it was opened on. It is `Sendable` so async
/// code can hand it between tasks; its async methods run on that loop, and its
/// poll methods fail with `.wrongThread` elsewhere. ``close()`` (or dropping the
/// last reference, futures included) closes the descriptor once no request
/// that uses it is in flight.
///
/// **Cancellation:** a request a pool thread has not started is cancelled
/// when its future is dropped; one it has started runs to the end, and its
/// result is dropped: a cancelled positional write may still have written,
/// all of it or a prefix. A dropped sequential read loses nothing: the read
/// ahead keeps its bytes for the next read (cancel-safe). Bytes a sequential
/// write accepted are written even if the file is dropped.
///
/// `@unchecked Sendable` is sound because its state (`handle`, `sequential`)
/// is touched solely on the loop thread: every poll method checks the
/// thread first (`EventLoop.wrongThread`), the async ones run there, and
/// `close()`/`deinit` called elsewhere, or after the loop's shutdown, hand
/// the close to the loop (`EventLoop.closesHere`), which runs it there or
/// under its late-close lock.
public final class File: @unchecked Sendable {
    /// The descriptor and when it is closed.
    let handle: OpenFile
    /// Whether the file keeps its own position and reads and writes at
    /// offsets (a regular file or a block device), or uses the descriptor's
    /// (a pipe, a terminal, a character device, a file opened to append).
    /// A character device that accepts `lseek` may still read as a stream
    /// (`/dev/hidraw*` hands each read the next report): two reads ahead there
    /// took two reports in either order, and the second was dropped after
    /// the first came back short.
    let hasOwnPosition: Bool
    /// The read-ahead and write-behind state.
    var sequential: SequentialIO

    /// The largest block sequential reads and writes move, when a file is
    /// opened or adopted: 1 MiB. Each block costs a round trip to a pool
    /// thread (a few thread wake-ups), which dominates below 256 KiB; 4 MiB
    /// blocks cost about 10 % less CPU per byte than 1 MiB ones, for four
    /// times the memory (docs/BENCHMARKS.md, "Files"). Reads start at 64 KiB
    /// and double while they fill their block, so a small file costs a small
    /// buffer; a file read to its end holds up to three blocks (two read
    /// ahead and the current one), plus one written behind. Change one
    /// file's with ``setBufferSize(_:)``.
    public static let defaultBufferSize = 1024 * 1024

    init(handle: OpenFile, usesDescriptorPosition: Bool) {
        self.handle = handle
        let position = lseek(handle.descriptor, 0, SEEK_CUR)
        hasOwnPosition = !usesDescriptorPosition && position >= 0 && Self.isSeekableStorage(handle.descriptor)
        sequential = SequentialIO(position: Int64(max(position, 0)), bufferSize: Self.defaultBufferSize)
    }

    /// Whether `descriptor` is a regular file or a block device: storage whose
    /// bytes stay where they are, which reads at offsets may take in any order.
    private static func isSeekableStorage(_ descriptor: Int32) -> Bool {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return false }
        let kind = info.st_mode & UInt32(S_IFMT)
        return kind == UInt32(S_IFREG) || kind == UInt32(S_IFBLK)
    }

    /// Adopts a descriptor that is already open (standard input or output, one
    /// a parent passed down), to read and write it on the pool.
    ///
    /// With `closesDescriptor: false` the file never closes it: its owner
    /// does (for descriptors 0, 1 and 2 that is the process, at exit). With
    /// `true` the file owns it and closes it as a file it opened.
    ///
    /// The file reads and writes at the descriptor's own position (which a
    /// shell may share with other processes), reading ahead of what was
    /// consumed as `cat` does.
    ///
    /// The descriptor should be in blocking mode: a pool thread reading a
    /// non-blocking pipe with nothing in it fails with `EAGAIN`.
    ///
    /// - Parameters:
    ///   - descriptor: the open descriptor.
    ///   - closesDescriptor: whether the file closes it (see above).
    ///   - path: what errors call it (default `fd N`).
    ///   - runtime: its loop; default the runtime running the calling thread.
    /// - Throws: `.invalidArgument` without a runtime, `.wrongThread` for a
    ///   runtime of another thread, `.closed` for a descriptor not open.
    public convenience init(
        adoptingDescriptor descriptor: Int32, closesDescriptor: Bool, path: String? = nil, runtime: Runtime? = nil
    ) throws(WeftError) {
        let name = path ?? "fd \(descriptor)"
        guard let loop = runtime?.loop ?? EventLoop.current else {
            throw WeftError(.invalidArgument, operation: "adopt \(name)",
                            detail: "no runtime: pass one, or adopt from inside a task")
        }
        if let error = loop.refusesNewHandle(operation: "adopt \(name)") { throw error }
        guard weft_descriptor_is_open(descriptor) != 0 else {
            throw WeftError(uvCode: UV_EBADF.rawValue, operation: "adopt \(name)")
        }
        // The descriptor's offset may be shared (a shell's `>>`, `(a; b) > f`):
        // read and write at it, so that the next writer continues after us.
        self.init(handle: OpenFile(loop: loop, descriptor: descriptor, path: name, closesDescriptor: closesDescriptor),
                  usesDescriptorPosition: true)
    }

    deinit {
        handle.closeOnLoop(cancelling: sequential.readsInFlight.map(\.request))
    }

    /// The path it was opened with (for an adopted descriptor, the name given, or `fd N`).
    public var path: String { handle.path }

    /// The descriptor, for calls Weft does not make. It stays valid until the
    /// file is closed.
    public var descriptor: Int32 { handle.descriptor }

    /// The size of each block sequential reads and writes move; see ``defaultBufferSize``.
    public var bufferSize: Int {
        get throws(WeftError) {
            if let error = wrongThread("bufferSize") { throw error }
            return sequential.bufferSize
        }
    }

    /// Sets the largest block sequential reads and writes move from now on
    /// (at least 4 KiB, at most 64 MiB). Reading ahead keeps two buffers of
    /// up to this size, and writing behind one.
    ///
    /// - Throws: `.invalidArgument` outside that range; `.wrongThread` off the file's loop.
    public func setBufferSize(_ bytes: Int) throws(WeftError) {
        if let error = wrongThread("setBufferSize") { throw error }
        guard (4096...(64 << 20)).contains(bytes) else {
            throw WeftError(.invalidArgument, operation: "setBufferSize(\(bytes))", detail: "not in 4 KiB...64 MiB")
        }
        sequential.bufferSize = bytes
    }

    /// Closes the file: operations started afterwards fail with `.closed`;
    /// the descriptor is closed once the requests in flight finished (a write
    /// already accepted still lands). Idempotent, from any thread.
    public func close() {
        if handle.loop.closesHere {
            // A read waiting on one polls again and fails with `.closed`.
            dropReadsAhead()
            handle.closeOnLoop()
        } else {
            // Its reads ahead belong to the loop thread: read them there.
            handle.loop.enqueue(CloseFileFromElsewhere(file: UnsafeTransfer(value: self)))
        }
    }

    /// The error for a call from a thread other than the loop's, if it is one.
    func wrongThread(_ operation: String) -> WeftError? {
        handle.loop.wrongThread("\(operation) \(path)")
    }

    /// Why a new request on this file must not start, if it must not.
    func refusal(_ operation: String) -> WeftError? {
        if let error = wrongThread(operation) { return error }
        if handle.isClosed { return WeftError(.closed, operation: "\(operation) \(path)") }
        return nil
    }

    /// The most bytes one read or write moves: Linux's own limit per call
    /// (`MAX_RW_COUNT`, 2 GiB less a page), below the 4 GiB a `uv_buf_t`'s
    /// length holds. A larger write is written in several calls.
    static let largestTransfer = 0x7fff_f000

    /// The largest buffer a positional read allocates: it reads at most this
    /// much per call, whatever `upTo` asked (`upTo: Int.max` trapped
    /// allocating it), as a sequential read reads at most a block.
    static let largestPositionalRead = 64 << 20

    /// Starts `uv_fs_read` of up to `buffer.capacity` bytes at `offset` (-1:
    /// the descriptor's position) into `buffer`.
    func startRead(into buffer: FileBuffer, count: Int, at offset: Int64, operation: String) throws(WeftError) -> FileRequest {
        let (loop, descriptor) = (handle.loop.uvLoop, handle.descriptor)
        return try FileRequest.start("\(operation) \(path)", file: handle, buffer: buffer) { request, done in
            var slice = uv_buf_init(buffer.bytes.assumingMemoryBound(to: CChar.self), UInt32(min(count, buffer.capacity, File.largestTransfer)))
            return uv_fs_read(loop, request, descriptor, &slice, 1, offset, done)
        }
    }

    /// Starts `uv_fs_write` of `count` bytes of `buffer` from `start` at `offset`.
    func startWrite(from buffer: FileBuffer, start: Int, count: Int, at offset: Int64, operation: String) throws(WeftError) -> FileRequest {
        let (loop, descriptor) = (handle.loop.uvLoop, handle.descriptor)
        return try FileRequest.start("\(operation) \(path)", file: handle, buffer: buffer) { request, done in
            var slice = uv_buf_init((buffer.bytes + start).assumingMemoryBound(to: CChar.self), UInt32(min(count, File.largestTransfer)))
            return uv_fs_write(loop, request, descriptor, &slice, 1, offset, done)
        }
    }
}

extension OpenFile {
    /// ``closeOnLoop()``, first cancelling the reads ahead a pool thread has
    /// not started (one on a terminal could otherwise wait for input for ever).
    func closeOnLoop(cancelling readsAhead: [FileRequest]) {
        if readsAhead.isEmpty { return closeOnLoop() }
        if loop.closesHere {
            for request in readsAhead { request.cancelWakingWaiters() }
            close()
        } else {
            loop.enqueue(CancelAndClose(requests: UnsafeTransfer(value: readsAhead), file: UnsafeTransfer(value: self)))
        }
    }
}

/// ``File/close()`` called off the file's loop, handed to the loop.
private struct CloseFileFromElsewhere: LoopJob {
    let file: UnsafeTransfer<File>

    func run() {
        file.value.close()
    }

    /// As `close()` on the loop: the reads ahead a pool thread has not
    /// started are cancelled (one on a terminal would hold a pool thread).
    func loopClosed() {
        file.value.handle.loop.runLateClose {
            file.value.dropReadsAhead()
            file.value.handle.closeAfterShutdown()
        }
    }
}

/// A dropped file's close, with its read ahead to cancel, handed to its loop.
private struct CancelAndClose: LoopJob {
    let requests: UnsafeTransfer<[FileRequest]>
    let file: UnsafeTransfer<OpenFile>

    func run() {
        for request in requests.value { request.cancelWakingWaiters() }
        file.value.close()
    }

    func loopClosed() {
        file.value.loop.runLateClose { file.value.closeAfterShutdown() }
    }
}
