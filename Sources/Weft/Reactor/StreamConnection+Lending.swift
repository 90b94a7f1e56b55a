/// Lending a waiting reader's buffer to libuv, so its bytes arrive with no
/// pool buffer and no copy (an async `read(into:)`).
extension StreamConnection {
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
    func keepLentBytes() {
        guard let (buffer, count) = reclaim(loans), count > 0 else { return }
        let base = loop.withReadBuffers { $0.take() }
        buffer.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: count) }
        chunks.prepend(Chunk(base: base, start: 0, end: count))
        bufferedBytes += count
    }
}
