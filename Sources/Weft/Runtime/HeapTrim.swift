import CLibUV
import CWeftSupport

/// When the loop hands the free pages of the heap back to the OS.
///
/// glibc keeps freed memory inside its heap, so without this a server's RSS
/// ratchets up with every burst of connections while its heap in use does not
/// (found by the soak, docs/RELIABILITY.md). Before blocking, after a burst of
/// work (128 tasks or more spawned since the last time, or an event the layers
/// above and the loop report through ``noteMemoryFreed()``: a connection
/// closed, a read buffer freed beyond the cache, a loop about to block with
/// its queues grown past what it keeps idle, a timer slab become mostly free
/// or a timer freed high in it; an async server's connections
/// are Swift tasks, not Weft tasks, and their buffers are memory the loop
/// does not count) and at most ten times a second, the loop frees what its
/// own queues grew to, tells its attachments to hand back what they keep
/// unused (``LoopMemoryHolder``: the read buffers' pages) and calls
/// `malloc_trim`.
struct HeapTrim {
    /// Events since the loop started after which freed memory may be worth
    /// handing back.
    private var memoryFreedEvents = 0
    /// Tasks spawned, events, and the time, when free memory was last released.
    private var tasksSpawnedAtLastRelease = 0
    private var memoryFreedEventsAtLastRelease = 0
    private var lastReleaseNanoseconds: UInt64 = 0

    /// Records that a large block of memory was freed (a connection's buffers
    /// and queued writes, a read buffer the cache had no room for).
    mutating func noteMemoryFreed() {
        memoryFreedEvents += 1
    }

    /// Releases free memory (after `releasingFirst` has freed what it can) if
    /// a burst happened since the last release and the rate limit allows.
    /// Returns the milliseconds until a release held back by the rate limit
    /// may run, so the loop wakes up for it rather than block with it pending
    /// (an idle server would otherwise keep the last burst's pages).
    mutating func releaseIfDue(tasksSpawned: Int, releasingFirst: () -> Void) -> UInt64? {
        guard tasksSpawned - tasksSpawnedAtLastRelease >= 128
            || memoryFreedEvents != memoryFreedEventsAtLastRelease else { return nil }
        let now = uv_hrtime()
        let sinceLast = now - lastReleaseNanoseconds
        guard sinceLast >= 100_000_000 else { return (100_000_000 - sinceLast) / 1_000_000 + 1 }
        tasksSpawnedAtLastRelease = tasksSpawned
        memoryFreedEventsAtLastRelease = memoryFreedEvents
        lastReleaseNanoseconds = now
        releasingFirst()
        weft_release_free_memory()
        return nil
    }
}

extension EventLoop {
    /// See ``HeapTrim/noteMemoryFreed()``; loop thread only.
    func noteMemoryFreed() {
        heapTrim.noteMemoryFreed()
    }
}
