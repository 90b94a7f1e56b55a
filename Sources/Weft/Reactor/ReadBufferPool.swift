import CWeftSupport

/// The 64 KiB buffers libuv reads into, recycled per loop (kept on the loop as
/// an attachment: see `LoopAttachmentKey`), and the loop's budget for what its
/// connections hold.
///
/// A connection takes one only when the OS has data for it (libuv calls the
/// alloc callback right before `read`), and gives it back once its bytes are
/// consumed, so an idle connection holds no read buffer. The cached buffers
/// stay allocated, but when the loop goes idle after a burst their pages go
/// back to the OS (``releaseIdleMemory()``): a burst of 64 connections reading
/// at once otherwise kept 256 KiB to 4 MiB resident per loop for good. They are
/// page-aligned so that every page of theirs can go. Loop thread only.
///
/// **The budget** (``RuntimeOptions/connectionBufferBudget``): every connection
/// reports what it holds (unread input plus queued writes) as it changes; the
/// total is the loop's `connectionBytesHeld` statistic. Over the budget, a
/// connection that holds anything may not read (its alloc callback gets no
/// buffer, libuv reports `UV_ENOBUFS`, and it pauses here); one that holds
/// nothing may. The paused read again when the total falls to three quarters
/// of the budget (all of them), or when they themselves hold nothing.
///
/// Every read and every consume reports here, so the hot path stays free of
/// runtime bookkeeping: `cached` and `paused` skip the exclusivity checks
/// (they are touched only on the loop thread, and no method here calls out
/// while one is being modified: `holdingChanged` resumes the connections
/// after emptying `paused`),
/// and the loop is reached through `Unmanaged` without a retain (the loop
/// owns the pool, so it outlives every call).
final class ReadBufferPool {
    static let key = LoopAttachmentKey(.readBuffers) { loop in ReadBufferPool(loop: loop) }
    static let bufferSize = 64 * 1024
    /// Buffers kept for reuse; more are freed.
    static let maximumCached = 64

    /// Told when a buffer is freed because the cache was full: a burst of
    /// reads whose memory the loop may hand back to the OS. Unowned: the loop
    /// owns the pool and releases it in its own deinit.
    private let owner: Unmanaged<EventLoop>
    @exclusivity(unchecked) private var cached: [UnsafeMutableRawPointer] = []
    /// Connections whose reading paused for the budget.
    @exclusivity(unchecked) private var paused: [StreamConnection] = []

    private init(loop: EventLoop) {
        owner = .passUnretained(loop)
    }

    /// Runs `body` with the owning loop, without retaining it.
    private func withLoop<Result>(_ body: (EventLoop) -> Result) -> Result {
        owner._withUnsafeGuaranteedRef(body)
    }

    deinit {
        for buffer in cached { buffer.deallocate() }
    }

    func take() -> UnsafeMutableRawPointer {
        cached.popLast()
            ?? UnsafeMutableRawPointer.allocate(byteCount: Self.bufferSize, alignment: 4096)
    }

    /// Whether a connection holding `holding` bytes may read now.
    func budgetAllowsRead(holding: Int) -> Bool {
        holding == 0 || withLoop { $0.counters.connectionBytesHeld <= $0.connectionBufferBudget }
    }

    /// A connection's holding changed from `before` to `now` bytes.
    func holdingChanged(from before: Int, to now: Int) {
        let resumesPaused = withLoop { loop -> Bool in
            loop.counters.connectionBytesHeld += now - before
            let held = loop.counters.connectionBytesHeld
            if now > before {
                if held > loop.counters.connectionBytesHeldPeak { loop.counters.connectionBytesHeldPeak = held }
                return false
            }
            return !paused.isEmpty && held <= loop.connectionBufferBudget - loop.connectionBufferBudget / 4
        }
        if resumesPaused {
            let resumed = paused
            paused.removeAll()
            for connection in resumed { connection.resumeReading() }
        }
    }

    func pause(_ connection: StreamConnection) {
        paused.append(connection)
        withLoop { $0.counters.readsPausedForBudget += 1 }
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
            withLoop { $0.noteMemoryFreed() }
        }
    }
}

extension ReadBufferPool: LoopMemoryHolder {
    /// The loop is idle: no read is using a cached buffer. Their pages go back
    /// to the OS; a read into one faults them in again (as a new buffer would).
    func releaseIdleMemory() {
        for buffer in cached { weft_release_pages(buffer, Self.bufferSize) }
    }
}

extension EventLoop {
    /// Calls `body` with the loop's read buffers. Loop thread only.
    @inline(__always)
    func withReadBuffers<Result>(_ body: (ReadBufferPool) -> Result) -> Result {
        withAttachment(ReadBufferPool.key, body)
    }
}
