/// The 64 KiB buffers libuv reads into, recycled per loop.
///
/// A stream takes one only when the OS has data for it (libuv calls the alloc
/// callback right before `read`), and gives it back once its bytes are consumed,
/// so an idle connection holds no read buffer.
final class ReadBufferPool {
    static let bufferSize = 64 * 1024
    /// Buffers kept for reuse; more are freed.
    static let maximumCached = 64

    private var cached: [UnsafeMutableRawPointer] = []
    /// Buffers freed because the cache was full: a burst of reads that the
    /// loop may want to hand back to the OS (`LoopCore.releaseFreeMemoryIfDue`).
    private(set) var overflowCount = 0

    deinit {
        for buffer in cached { buffer.deallocate() }
    }

    func take() -> UnsafeMutableRawPointer {
        cached.popLast()
            ?? UnsafeMutableRawPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
    }

    func give(_ buffer: UnsafeMutableRawPointer) {
        if cached.count < Self.maximumCached {
            cached.append(buffer)
        } else {
            buffer.deallocate()
            overflowCount += 1
        }
    }
}
