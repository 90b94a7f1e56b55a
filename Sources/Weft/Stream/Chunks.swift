/// A stream of arrays of up to `size` consecutive elements; the last may be
/// shorter. See ``PollStream/chunks(_:)``.
///
/// **Cancellation:** dropping it drops the stream and the elements gathered
/// for the chunk not yet yielded: those are lost.
public struct ChunksStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline var chunk: [Base.Element] = []
    @usableFromInline var baseEnded = false
    @usableFromInline let size: Int

    @inlinable
    init(base: Base, size: Int) {
        precondition(size > 0, "chunks' size must be positive")
        self.base = base
        self.size = size
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<[Base.Element]?> {
        while !baseEnded {
            switch base.pollNext(&context) {
            case .pending: return .pending
            case .ready(nil): baseEnded = true
            case .ready(let element?):
                if chunk.isEmpty { chunk.reserveCapacity(Swift.min(size, chunkReserveLimit)) }
                chunk.append(element)
                if chunk.count == size { return .ready(takeChunk()) }
            }
        }
        return .ready(chunk.isEmpty ? nil : takeChunk())
    }

    @inlinable
    mutating func takeChunk() -> [Base.Element] {
        defer { chunk = [] }
        return chunk
    }
}

/// A stream of arrays of up to `size` consecutive elements, a chunk being
/// yielded early, not empty, once `delay` has passed since its first element
/// arrived. See ``PollStream/chunks(_:timeout:)``.
///
/// **Cancellation:** dropping it drops the stream, its timer (disarmed at
/// once) and the elements gathered for the chunk not yet yielded: those are lost.
public struct ChunksTimeoutStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline var chunk: [Base.Element] = []
    @usableFromInline var baseEnded = false
    /// Armed when a chunk gets its first element.
    @usableFromInline var deadline: Sleep?
    @usableFromInline let size: Int
    @usableFromInline let delay: Duration

    @inlinable
    init(base: Base, size: Int, delay: Duration) {
        precondition(size > 0, "chunks' size must be positive")
        self.base = base
        self.size = size
        self.delay = delay
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<[Base.Element]?> {
        gather: while !baseEnded {
            switch base.pollNext(&context) {
            case .pending: break gather
            case .ready(nil): baseEnded = true
            case .ready(let element?):
                if chunk.isEmpty {
                    chunk.reserveCapacity(Swift.min(size, chunkReserveLimit))
                    deadline = sleepFuture(for: delay)
                }
                chunk.append(element)
                if chunk.count == size { return .ready(takeChunk()) }
            }
        }
        if baseEnded { return .ready(chunk.isEmpty ? nil : takeChunk()) }
        guard !chunk.isEmpty, case .ready = deadline!.poll(&context) else { return .pending }
        return .ready(takeChunk())
    }

    @inlinable
    mutating func takeChunk() -> [Base.Element] {
        deadline = nil
        defer { chunk = [] }
        return chunk
    }
}

extension PollStream {
    /// A stream of arrays of `size` consecutive elements (the last one shorter
    /// if the stream ends mid-chunk). A `size` below 1 traps.
    @inlinable
    public func chunks(_ size: Int) -> ChunksStream<Self> {
        ChunksStream(base: self, size: size)
    }

    /// A stream of arrays of up to `size` consecutive elements: a chunk is
    /// yielded when full, or when `delay` has passed since its first element
    /// arrived (tokio-stream's `chunks_timeout`). Never an empty chunk. A
    /// `size` below 1 traps.
    @inlinable
    public func chunks(_ size: Int, timeout delay: Duration) -> ChunksTimeoutStream<Self> {
        ChunksTimeoutStream(base: self, size: size, delay: delay)
    }
}

/// The most elements a chunk reserves room for up front: a chunk of a large
/// `size` (`.max`, for batching by time alone) grows as elements come, instead
/// of reserving `size` (which trapped for `.max`, and cost 8 MiB per chunk of
/// a million `Int`s holding one).
@usableFromInline
let chunkReserveLimit = 1024
