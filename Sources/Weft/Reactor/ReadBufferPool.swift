/// The 64 KiB buffers libuv reads into, recycled per loop (kept on the loop as
/// an attachment: see `LoopAttachmentKey`).
///
/// A connection takes one only when the OS has data for it (libuv calls the
/// alloc callback right before `read`), and gives it back once its bytes are
/// consumed, so an idle connection holds no read buffer. Loop thread only.
final class ReadBufferPool {
    static let key = LoopAttachmentKey { loop in ReadBufferPool(loop: loop) }
    static let bufferSize = 64 * 1024
    /// Buffers kept for reuse; more are freed.
    static let maximumCached = 64

    /// Told when a buffer is freed because the cache was full: a burst of
    /// reads whose memory the loop may hand back to the OS. Unowned: the loop
    /// owns the pool and releases it in its own deinit.
    private unowned(unsafe) let loop: EventLoop
    private var cached: [UnsafeMutableRawPointer] = []

    private init(loop: EventLoop) {
        self.loop = loop
    }

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
            loop.noteMemoryFreed()
        }
    }
}

extension EventLoop {
    /// Calls `body` with the loop's read buffers. Loop thread only.
    @inline(__always)
    func withReadBuffers<Result>(_ body: (ReadBufferPool) -> Result) -> Result {
        withAttachment(ReadBufferPool.key, body)
    }
}
