/// Lending a waiting reader's buffer to libuv, so its bytes arrive with no
/// pool buffer and no copy (an async `read(into:)`).
extension StreamConnection {
    /// The loan of a waiting reader's buffer, in a box made by the first loan
    /// (only `read(into:)` lends) and kept for the next.
    final class Lending {
        /// The caller's buffer of a waiting async `read(into:)`, lent: with
        /// nothing buffered, libuv reads straight into it. The reader holds
        /// the array too; this reference keeps the storage alive for a
        /// reader dropped while it waits, until the loan ends.
        @exclusivity(unchecked) var buffer: [UInt8]?
        /// Where `buffer`'s storage starts (to recognise it in the read callback).
        @exclusivity(unchecked) var base: UnsafeMutableRawPointer?
        /// Bytes libuv read into `buffer`; they come before every chunk.
        @exclusivity(unchecked) var filled = 0
        /// Numbers the loans, so a reader takes back only its own buffer.
        @exclusivity(unchecked) var loans: UInt64 = 0
    }

    /// Lends `buffer`'s storage (the reader keeps the array) for libuv to read
    /// into while nothing is buffered, so the bytes reach the reader with no
    /// pool buffer and no copy; returns the loan's number for ``reclaim(_:)``.
    /// Call it after a read came back pending, with `buffer` not shared. The
    /// loan ends when the reader reclaims it, or when another loan or reader
    /// comes first: bytes already in the buffer then move to the front of the
    /// chunks, so none is lost, and the reader reads on into its own buffer.
    ///
    /// The storage pointer outlives `withUnsafeMutableBytes` (which made no
    /// copy: the array was not shared) because neither the reader nor the
    /// ``Lending`` mutates the array through Swift while it is lent: the
    /// storage stays put and alive until the loan ends, and the reader, which
    /// writes to it only after that, again holds the only reference.
    func lend(_ buffer: inout [UInt8]) -> UInt64 {
        let lending = self.lending ?? Lending()
        self.lending = lending
        if lending.buffer != nil { keepLentBytes() }
        lending.base = buffer.withUnsafeMutableBytes { $0.baseAddress }
        lending.buffer = buffer
        lending.loans &+= 1
        return lending.loans
    }

    /// Ends loan `number` for its reader: how many bytes libuv read into its
    /// buffer; `nil` when the loan already ended.
    func reclaim(_ number: UInt64) -> Int? {
        guard let lending, number == lending.loans, lending.buffer.take() != nil else { return nil }
        defer { (lending.base, lending.filled) = (nil, 0) }
        return lending.filled
    }

    /// Ends the loan without its reader: copies the bytes read into the lent
    /// buffer to a chunk in front of the others.
    func keepLentBytes() {
        guard let lending, lending.buffer != nil else { return }
        if lending.filled > 0, let lent = lending.base {
            let base = loop.withReadBuffers { $0.take() }
            base.copyMemory(from: lent, byteCount: lending.filled)
            chunks.prepend(Chunk(base: base, start: 0, end: lending.filled))
            bufferedBytes += lending.filled
        }
        _ = reclaim(lending.loans)
    }
}
