/// The 64 KiB buffers libuv reads into, recycled per loop (kept on the loop as
/// an attachment: see `LoopAttachmentKey`), and the loop's budget for what its
/// connections hold.
///
/// A connection takes one only when the OS has data for it (libuv calls the
/// alloc callback right before `read`), and gives it back once its bytes are
/// consumed, so an idle connection holds no read buffer. Loop thread only.
///
/// **The budget** (``RuntimeOptions/connectionBufferBudget``): every connection
/// reports what it holds (unread input plus queued writes) as it changes; the
/// total is the loop's `connectionBytesHeld` statistic. Over the budget, a
/// connection that holds anything may not read (its alloc callback gets no
/// buffer, libuv reports `UV_ENOBUFS`, and it pauses here); one that holds
/// nothing may. The paused read again when the total falls to three quarters
/// of the budget (all of them), or when they themselves hold nothing.
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
    /// Connections whose reading paused for the budget.
    private var paused: [StreamConnection] = []

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

    /// Whether a connection holding `holding` bytes may read now.
    func budgetAllowsRead(holding: Int) -> Bool {
        holding == 0 || loop.counters.connectionBytesHeld <= loop.connectionBufferBudget
    }

    /// A connection's holding changed from `before` to `now` bytes.
    func holdingChanged(from before: Int, to now: Int) {
        loop.counters.connectionBytesHeld += now - before
        let held = loop.counters.connectionBytesHeld
        if now > before {
            if held > loop.counters.connectionBytesHeldPeak { loop.counters.connectionBytesHeldPeak = held }
        } else if !paused.isEmpty && held <= loop.connectionBufferBudget - loop.connectionBufferBudget / 4 {
            let resumed = paused
            paused.removeAll()
            for connection in resumed { connection.resumeReading() }
        }
    }

    func pause(_ connection: StreamConnection) {
        paused.append(connection)
        loop.counters.readsPausedForBudget += 1
    }

    /// Takes `connection` off the paused list (it resumes or closes by itself).
    func forget(_ connection: StreamConnection) {
        if let index = paused.firstIndex(where: { $0 === connection }) { paused.remove(at: index) }
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
