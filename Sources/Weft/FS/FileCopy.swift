/// Copies one file into another until end of file, handing each block the
/// reader read to the writer without copying it; yields the number of bytes
/// copied. See ``copy(from:to:)->FileCopy``.
///
/// Three buffers circulate: while a pool thread writes block n, another
/// reads block n+1 (the reader's read ahead), and the block written last
/// becomes the next one to read into.
///
/// **Cancellation:** not cancel-safe: a block taken from the reader and not
/// yet written when dropped is still written (its request owns it), but the
/// copy's count of it is lost.
public struct FileCopy: Future {
    let reader: File
    let writer: File
    var copied = 0
    var reachedEnd = false

    public mutating func poll(_ context: inout Context) -> Poll<Result<Int, WeftError>> {
        if reader === writer {
            return .ready(.failure(WeftError(.invalidArgument, operation: "copy \(reader.path)", detail: "a file onto itself")))
        }
        if let error = writer.wrongThread("write") { return .ready(.failure(error)) }
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
            case .ready(.failure(let error)): return .ready(.failure(error))
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
        return writer.pollFlush(&context).map { result in result.map { copied } }
    }
}

/// A future that copies the file `reader` into the file `writer` until end
/// of file, then flushes; yields the number of bytes copied. Each block moves
/// from reader to writer without a copy in between (``FileCopy``), the next
/// one being read while the last one is written.
public func copy(from reader: File, to writer: File) -> FileCopy {
    FileCopy(reader: reader, writer: writer)
}
