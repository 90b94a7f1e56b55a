import CLibUV
import CWeftSupport

/// Copies one file into another until end of file, or a range of it
/// (``File/sendFuture(to:offset:count:)-(File,_,_)``); yields the number of
/// bytes copied. See ``copy(from:to:)->FileCopy``.
///
/// When the reader holds nothing read ahead, the copy runs on the pool in
/// chunks: one pool job reads and writes 128 KiB block after block (up to
/// 64 MiB, then hands back to the loop), as `cat` would, so the thread hand-offs
/// cost one per chunk rather than two per block (docs/BENCHMARKS.md,
/// "Files"). Otherwise (bytes were already read ahead) each block the reader
/// reads is handed to the writer without a copy, the next being read while
/// the last is written.
///
/// Two files open on one regular file (the same device and inode) fail with
/// `.invalidArgument`, "input file is output file", as `cat` refuses them: a
/// whole copy at the first poll (it would read what it has just written: to
/// a file appending, until the disk filled), a range before its first chunk
/// if it is written after where its reading starts and before where it ends
/// (it would read bytes it overwrote). A range apart from where it is
/// written, or written before it, is copied.
///
/// **A write that fails** (the disk full, the file too large) fails the copy
/// naming the write, and the reader is left at the first byte not written,
/// as the writer is: a copy again, once the cause is gone, carries on with
/// nothing missing. A pipe cannot go back: the bytes read from it and not
/// written are lost.
///
/// **Cancellation:** not cancel-safe: a chunk or block a pool thread started
/// is still copied when the future is dropped (the files' positions then
/// count it, and their next reads, writes and copies wait for it, woken when
/// it ends), but the copy's count of it is lost.
public struct FileCopy: Future {
    let reader: File
    let writer: File
    /// For ``File/sendFuture(to:offset:count:)-(File,_,_)``: the bytes of
    /// `reader` from `offset` (read there, its own position untouched), at
    /// most `count`, copied in the kernel where it can; nil: from `reader`'s
    /// position to its end.
    var range: (offset: Int64, count: Int)? = nil
    var copied = 0
    var reachedEnd = false
    /// The chunk in flight on the pool, if copying in chunks.
    var chunk: (work: SubmittedRequest<uv_work_t, BlockingWork>, outcome: ChunkOutcome)?
    /// Whether this copy runs in chunks (decided at the first poll).
    var inChunks: Bool?
    /// Set at the first poll when a range is copied within one regular file:
    /// before the first chunk (once the writes before it landed) the range is
    /// checked against where it is written, then this is cleared.
    var checksOverlap = false

    /// The most a chunk copies before handing back to the loop.
    static var chunkLimit: Int { 64 << 20 }
    /// The block a chunk reads and writes at a time: 128 KiB, as `cat`, so
    /// the buffer stays in the CPU's cache between the read and the write
    /// (64 KiB to 1 MiB measured in docs/BENCHMARKS.md, "Files").
    static var chunkBlock: Int { 128 << 10 }

    public mutating func poll(_ context: inout Context) -> Poll<Result<Int, WeftError>> {
        // A range of a file sent to that same file is judged as one sent to
        // another `File` of it (`checksOverlap`): refused only where it
        // overlaps where it is written.
        if reader === writer && range == nil {
            return .ready(.failure(WeftError(.invalidArgument, operation: "copy \(reader.path)", detail: "a file onto itself")))
        }
        if let error = reader.wrongThread("read") ?? writer.wrongThread("write") { return .ready(.failure(error)) }
        if inChunks == nil {
            if let range {
                // Refused before libuv's or the kernel's size types read -1 as 2^64 - 1.
                guard range.offset >= 0 && range.count >= 0 else {
                    return .ready(.failure(WeftError(.libuv(code: UV_EINVAL.rawValue), operation: "sendfile \(reader.path)",
                                                     detail: "negative offset \(range.offset) or count \(range.count)")))
                }
            }
            // A closed file fails here, before its descriptor (which may name
            // another file by now) is looked at, and with nothing to copy too.
            if let error = reader.refusal("read") ?? writer.refusal("write") { return .ready(.failure(error)) }
            if weft_same_regular_file(reader.descriptor, writer.descriptor) != 0 {
                guard range != nil else {
                    return .ready(.failure(WeftError(.invalidArgument, operation: "copy \(reader.path)",
                                                     detail: "input file is output file (\(writer.path))")))
                }
                checksOverlap = true
            }
            let idle = reader.sequential.readStart == reader.sequential.readEnd
                && reader.sequential.readsInFlight.isEmpty && reader.sequential.readError == nil
            inChunks = range != nil || idle
        }
        return inChunks! ? pollChunks(&context) : pollBlocks(&context)
    }

    private mutating func pollChunks(_ context: inout Context) -> Poll<Result<Int, WeftError>> {
        while !reachedEnd && copied < range?.count ?? .max {
            if let (work, outcome) = chunk {
                if let error = work.wrongThread("copy \(reader.path)") { return .ready(.failure(error)) }
                let operation = work.operation
                guard let status = operation.status else {
                    operation.waiting.register(context.waker)?.wake()
                    return .pending
                }
                chunk = nil
                if status < 0 {
                    return .ready(.failure(WeftError(uvCode: status, operation: "copy \(reader.path)")))
                }
                copied += outcome.copied
                if outcome.error < 0 {
                    let failed = outcome.failedWrite ? "write \(writer.path)" : "read \(reader.path)"
                    return .ready(.failure(WeftError(fileCode: outcome.error, operation: failed)))
                }
                reachedEnd = outcome.ended
                continue
            }
            switch writer.pollReadyToWrite(&context) {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success): break
            }
            if range == nil {
                // Reading at the reader's position: after its chunk in flight
                // (another copy's, maybe dropped), which moves it when it ends
                // (started at once, the chunk copied the same bytes again).
                switch reader.pollWritesDone(&context) {
                case .pending: return .pending
                case .ready(.failure(let error)): return .ready(.failure(error))
                case .ready(.success): break
                }
            }
            if let error = reader.refusal("read") { return .ready(.failure(error)) }
            if checksOverlap, let range {
                if let error = overlapRefusal(range) { return .ready(.failure(error)) }
                checksOverlap = false
            }
            switch startChunk() {
            case .failure(let error): return .ready(.failure(error))
            case .success(let started): chunk = started
            }
        }
        return writer.pollFlush(&context).map { result in result.map { copied } }
    }

    /// The error for a range of one regular file that would read bytes it has
    /// overwritten: one written after where its reading starts and before
    /// where it ends (written before it, the copy forwards stays ahead of its
    /// writes). The range read counts what is past the end of the file too:
    /// the copy's own writes may put bytes there.
    private func overlapRefusal(_ range: (offset: Int64, count: Int)) -> WeftError? {
        var (position, size): (Int64, Int64) = (0, 0)
        let status = weft_write_position(writer.descriptor, &position, &size)
        if status < 0 { return WeftError(uvCode: status, operation: "sendfile \(reader.path)") }
        let start = writer.hasOwnPosition ? writer.sequential.position : position
        let (sum, overflow) = range.offset.addingReportingOverflow(Int64(range.count))
        let readEnd = overflow ? .max : sum
        let written = min(Int64(range.count), max(size - range.offset, 0))
        guard written > 0, range.offset < start, start < readEnd else { return nil }
        return WeftError(.invalidArgument, operation: "sendfile \(reader.path)",
                         detail: "input file is output file (\(writer.path)): the range at \(range.offset), \(range.count) bytes, overlaps where it is written, at \(start)")
    }

    /// Starts a chunk on the pool. Both files count it as a request in flight
    /// (neither descriptor is closed under it), and both positions advance by
    /// what it copied when it ends, even if this future was dropped.
    private func startChunk() -> Result<(work: SubmittedRequest<uv_work_t, BlockingWork>, outcome: ChunkOutcome), WeftError> {
        let (reader, writer) = (reader, writer)
        let (source, target) = (reader.handle, writer.handle)
        let outcome = ChunkOutcome()
        let block = Self.chunkBlock
        let buffer = FileBuffer(capacity: block)
        let (input, output) = (source.descriptor, target.descriptor)
        let range = range
        let inputOffset = range.map { $0.offset + Int64(copied) } ?? (reader.hasOwnPosition ? reader.sequential.position : -1)
        let outputOffset = writer.hasOwnPosition ? writer.sequential.position : -1
        let limit = Int64(min(range.map { $0.count - copied } ?? .max, Self.chunkLimit))
        source.requestsInFlight += 1
        target.requestsInFlight += 1
        let finished = {
            if range == nil && reader.hasOwnPosition {
                reader.sequential.position += Int64(outcome.copied)
                reader.sequential.nextReadOffset = reader.sequential.position
            }
            if writer.hasOwnPosition {
                writer.sequential.position += Int64(outcome.copied)
                writer.sequential.nextReadOffset = writer.sequential.position
            }
            source.requestFinished()
            target.requestFinished()
        }
        do {
            let work = try BlockingWork.start(on: source.loop, done: finished) {
                var (copied, ended, failedWrite): (Int64, Int32, Int32) = (0, 0, 0)
                outcome.error = range == nil
                    ? weft_copy_blocks(input, inputOffset, output, outputOffset, buffer.bytes, block, limit, &copied, &ended, &failedWrite)
                    : weft_copy_range(input, inputOffset, output, outputOffset, buffer.bytes, block, limit, &copied, &ended, &failedWrite)
                (outcome.copied, outcome.ended, outcome.failedWrite) = (Int(copied), ended != 0, failedWrite != 0)
            }
            // Until it ends, the files' other reads and writes wait for it
            // (the reader's, when it reads at the reader's position); the
            // first to find it ended forgets it (`pollWritesDone`).
            if range == nil { reader.sequential.transferInFlight = work }
            writer.sequential.transferInFlight = work
            return .success((SubmittedRequest(work, on: source.loop, isShared: true), outcome))
        } catch {
            source.requestFinished()
            target.requestFinished()
            return .failure(WeftError(error.kind, operation: "copy \(reader.path)", detail: error.detail))
        }
    }

    private mutating func pollBlocks(_ context: inout Context) -> Poll<Result<Int, WeftError>> {
        while !reachedEnd {
            let filled: UnsafeRawBufferPointer
            switch reader.pollFillBuffer(&context) {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success(let bytes)): filled = bytes
            }
            if filled.isEmpty {
                reachedEnd = true
                break
            }
            switch writer.pollReadyToWrite(&context) {
            case .pending: return .pending
            case .ready(.failure(let error)): return .ready(.failure(readAgainUnwritten(error)))
            case .ready(.success): break
            }
            // The block written last is read into next.
            if reader.sequential.spareReadBuffer == nil, let spare = writer.sequential.spareWriteBuffer.take() {
                reader.sequential.spareReadBuffer = spare
            }
            let block = reader.takeBlock()
            if let error = writer.submitBlock(block.buffer, start: block.start, count: block.count) {
                return .ready(.failure(error))
            }
            copied += block.count
        }
        return writer.pollFlush(&context).map { result in
            result.map { copied }.mapError { readAgainUnwritten($0) }
        }
    }

    /// After the writer failed: once this copy submitted a block (the failure
    /// is then its last block's), the reader goes back to the first byte of it
    /// not written, as the writer did, and forgets what it read ahead, so that
    /// a copy again copies them (it went on after them, leaving them out). A
    /// reader at its descriptor's position (a pipe) cannot go back: they are
    /// lost.
    private func readAgainUnwritten(_ error: WeftError) -> WeftError {
        let unwritten = writer.sequential.unwritten
        if copied > 0 && unwritten > 0 && reader.hasOwnPosition {
            reader.sequential.position -= Int64(unwritten)
            reader.discardReadAhead()
        }
        return error
    }
}

/// What a chunk copied on a pool thread. `@unchecked Sendable` because the
/// pool thread writes it once before the work's completion and the loop reads
/// it only after (libuv's work queue orders the two).
final class ChunkOutcome: @unchecked Sendable {
    var copied = 0
    var ended = false
    var failedWrite = false
    var error: Int32 = 0
}

/// A future that copies the file `reader` into the file `writer` until end
/// of file, then flushes; yields the number of bytes copied (``FileCopy``:
/// in chunks on the pool, read and written block after block by one job).
/// Fails with `.invalidArgument` when both are open on one regular file.
public func copy(from reader: File, to writer: File) -> FileCopy {
    FileCopy(reader: reader, writer: writer)
}
