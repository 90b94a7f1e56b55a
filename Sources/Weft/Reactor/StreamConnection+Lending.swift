/// Lending a waiting reader's buffer to libuv, so its bytes arrive with no
/// pool buffer and no copy (an async `read(into:)`).
extension StreamConnection {
    /// The loan of a waiting reader's buffer, in a box made by the first loan
    /// (only `read(into:)` lends) and kept for the next.
    final class Lending {
        /// The caller's buffer of a waiting async `read(into:)`, lent: with
        /// nothing buffered, libuv reads straight into it.
        @exclusivity(unchecked) var buffer: [UInt8]?
        /// Where `buffer`'s storage starts (to recognise it in the read callback).
        @exclusivity(unchecked) var base: UnsafeMutableRawPointer?
        /// Bytes libuv read into `buffer`; they come before every chunk.
        @exclusivity(unchecked) var filled = 0
        /// Numbers the loans, so a reader takes back only its own buffer.
        @exclusivity(unchecked) var loans: UInt64 = 0
    }

    /// Lends `buffer` (taking it, leaving `[]`) for libuv to read into while
    /// nothing is buffered, so the bytes reach the reader with no pool buffer
    /// and no copy; returns the loan's number for ``reclaim(_:)``. Call it after
    /// a read came back pending. The loan ends when the reader reclaims it, or
    /// when another loan or reader comes first: bytes already in the buffer then
    /// move to the front of the chunks, so none is lost.
    ///
    /// The storage pointer outlives `withUnsafeMutableBytes` because the
    /// ``Lending`` holds the only reference to the array (so that call made no
    /// copy) and never mutates it through Swift while lent: the storage stays
    /// put and alive until ``reclaim(_:)`` or ``keepLentBytes()`` hands it on.
    func lend(_ buffer: inout [UInt8]) -> UInt64 {
        let lending = self.lending ?? Lending()
        self.lending = lending
        if lending.buffer != nil { keepLentBytes() }
        var taken: [UInt8] = []
        swap(&taken, &buffer)
        lending.base = taken.withUnsafeMutableBytes { $0.baseAddress }
        lending.buffer = taken
        lending.loans &+= 1
        return lending.loans
    }

    /// Takes back loan `number`'s buffer and how many bytes libuv read into it;
    /// `nil` when the loan already ended.
    func reclaim(_ number: UInt64) -> (buffer: [UInt8], count: Int)? {
        guard let lending, number == lending.loans, let buffer = lending.buffer.take() else { return nil }
        defer { (lending.base, lending.filled) = (nil, 0) }
        return (buffer, lending.filled)
    }

    /// Ends the loan without its reader: copies the bytes read into the lent
    /// buffer to a chunk in front of the others.
    func keepLentBytes() {
        guard let lending, let (buffer, count) = reclaim(lending.loans), count > 0 else { return }
        let base = loop.withReadBuffers { $0.take() }
        buffer.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: count) }
        chunks.prepend(Chunk(base: base, start: 0, end: count))
        bufferedBytes += count
    }
}
