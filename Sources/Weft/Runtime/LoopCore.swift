import CLibUV
import CWeftSupport
import Glibc
import Synchronization

/// The executor behind a ``Runtime``: one `uv_loop_t`, the ready queue, the
/// registry of live tasks and the timer driver. Confined to the thread that runs
/// it (invariant 9); other threads reach it only through `remote`.
///
/// Lifetime: owned by its `Runtime` (and, later, by the owners of the handles on
/// its loop). `shutdown()` cancels every task and closes the handles the core
/// owns; `deinit` closes the loop once nothing uses it.
@usableFromInline
final class LoopCore {
    let loop: UnsafeMutablePointer<uv_loop_t>
    /// Tasks to poll, each holding one retained reference (taken on enqueue,
    /// given back after the poll).
    private let ready = RingBuffer<Unmanaged<RawTask>>(capacity: 1024)
    @usableFromInline let remote: RemoteScheduler
    let timers: TimerDriver
    /// Buffers for socket reads, shared by every stream on the loop.
    let readBuffers = ReadBufferPool()
    /// Armed only while the loop blocks with no handle active but a waker held
    /// outside, so that the stuck check runs again if that waker is dropped.
    private let watchdog: UnsafeMutablePointer<uv_timer_t>
    /// The live (incomplete) tasks, so `shutdown()` can cancel them all.
    private let registry = TaskRegistry()
    @exclusivity(unchecked) var counters = RuntimeStatistics()
    /// Set while a thread is inside `drive`; read by other threads in
    /// `isOnLoopThread`, hence atomic.
    private let running = Atomic<Bool>(false)
    @usableFromInline var isRunning: Bool { running.load(ordering: .acquiring) }
    private(set) var isShutDown = false
    /// Unique per process (never reused, unlike the object's address), so a dead
    /// loop's executors never mistake a new loop for theirs.
    @usableFromInline let identity = LoopCore.nextIdentity.add(1, ordering: .relaxed).newValue
    private static let nextIdentity = Atomic<UInt64>(0)
    /// The thread that created the runtime: it owns it while it is not running.
    private let ownerThread = pthread_self()

    /// How long the loop blocks before re-checking whether it is stuck, while the
    /// only possible source of progress is a waker held outside the runtime.
    static let stuckRecheckMilliseconds: UInt64 = 100

    /// When the current `drive` began, and the time spent in earlier ones
    /// (`uv_hrtime` nanoseconds), for the busy-time statistic.
    @exclusivity(unchecked) private var driveStartedAt: UInt64?
    @exclusivity(unchecked) private var nanosecondsInsideDrive: UInt64 = 0
    /// A waker that a finished `awaitOnLoop` left for the next one on this
    /// loop, so that async code awaiting futures does not allocate one per
    /// await (see ``ContinuationWaker/reusable()``). Loop thread only.
    @exclusivity(unchecked) var spareResumer: ContinuationWaker?

    /// Keeps `resumer` as the spare unless there already is one.
    func keepSpare(_ resumer: __owned ContinuationWaker) {
        if spareResumer == nil { spareResumer = resumer }
    }
    /// Deterministic mode: the scheduler's generator (nil: FIFO).
    @exclusivity(unchecked) private var scheduler: SplitMix64?
    /// Deterministic mode: the state of `weft_random` (select's choices) while
    /// this loop is not running; swapped in and out around `drive`.
    @exclusivity(unchecked) private var selectRandomState: UInt64 = 0

    init(options: RuntimeOptions) throws(WeftError) {
        // Writes to a closed socket must fail with EPIPE, not kill the process.
        weft_ignore_sigpipe()
        loop = .allocate(capacity: 1)
        var error: Int32 = 0
        do {
            try check(uv_loop_init(loop), "uv_loop_init")
        } catch {
            loop.deallocate()
            throw error
        }
        // The async handle stays referenced so that UV_RUN_ONCE blocks (instead of
        // returning at once) while a task waits on another thread.
        guard let async = weft_async_new(loop, { _ in }, &error) else {
            uv_loop_close(loop)
            loop.deallocate()
            throw WeftError(uvCode: error, operation: "uv_async_init")
        }
        guard let watchdog = weft_timer_new(loop, &error) else {
            weft_close_and_free(weft_async_handle(async))
            uv_run(loop, UV_RUN_NOWAIT)
            uv_loop_close(loop)
            loop.deallocate()
            throw WeftError(uvCode: error, operation: "uv_timer_init")
        }
        self.watchdog = watchdog
        remote = RemoteScheduler(async: async, loopIdentity: identity)
        var virtualClock: VirtualClock?
        if let seed = options.deterministicSeed {
            var generator = SplitMix64(seed: seed)
            selectRandomState = generator.next() | 1
            scheduler = generator
            virtualClock = VirtualClock()
            virtualClock?.install()
        }
        do {
            timers = try TimerDriver(loop: loop, virtualClock: virtualClock)
        } catch {
            virtualClock?.uninstall()
            _ = remote.close().map { weft_close_and_free(weft_async_handle($0)) }
            weft_close_and_free(weft_timer_handle(watchdog))
            uv_run(loop, UV_RUN_NOWAIT)
            uv_loop_close(loop)
            loop.deallocate()
            throw error
        }
        executors = LoopExecutors(core: self)
        remote.orphans.adopt(serial: executors.serial.asUnownedSerialExecutor(),
                             task: executors.task.asUnownedTaskExecutor())
    }

    deinit {
        shutdown()
        // Close callbacks of handles closed since shutdown run here; then the loop
        // must be empty. Thread-pool work that had already started (spawnBlocking,
        // a name lookup) cannot be cancelled: a background thread runs the loop
        // until it completes, then closes and frees it. If a handle is still open
        // its memory must not be freed under it, so the loop is leaked rather
        // than closed.
        uv_run(loop, UV_RUN_NOWAIT)
        if uv_loop_close(loop) == 0 {
            loop.deallocate()
        } else if weft_loop_active_requests(loop) > 0 && weft_loop_open_handles(loop) == 0 {
            _ = weft_finish_loop_in_background(loop) { $0?.deallocate() }
        }
    }

    /// Whether the calling thread may touch this loop: it is running it, or it
    /// created it and nobody is running it (invariant 9).
    @usableFromInline var isOnLoopThread: Bool {
        if weft_current_runtime() == Unmanaged.passUnretained(self).toOpaque() { return true }
        return !isRunning && pthread_equal(ownerThread, pthread_self()) != 0
    }

    /// Calls `body` with the core running on the calling thread, if any,
    /// without retaining it (it is alive: it is running here).
    @inlinable
    static func withCurrent<R>(_ body: (LoopCore?) -> R) -> R {
        guard let pointer = weft_current_runtime() else { return body(nil) }
        return Unmanaged<LoopCore>.fromOpaque(pointer)._withUnsafeGuaranteedRef { body($0) }
    }

    /// The core running on the calling thread, if any.
    @usableFromInline
    static var current: LoopCore? {
        guard let pointer = weft_current_runtime() else { return nil }
        return Unmanaged<LoopCore>.fromOpaque(pointer).takeUnretainedValue()
    }

    // MARK: - Tasks

    /// Adds a new task (its `scheduled` bit already set) to the registry and the
    /// ready queue. After shutdown the task is cancelled at once.
    @usableFromInline
    func register(_ task: RawTask) {
        counters.tasksSpawned += 1
        counters.tasksAlive += 1
        registry.insert(task)
        if isShutDown {
            task.perform(.cancel(.runtimeShutDown))
        } else {
            ready.append(.passRetained(task))
        }
    }

    /// Removes a completed task from the registry, dropping its reference.
    func taskDidComplete(_ task: RawTask) {
        counters.tasksAlive -= 1
        registry.remove(task)
    }

    /// A wake on the loop thread: a plain enqueue.
    func enqueueLocal(_ task: RawTask) {
        counters.localWakes += 1
        ready.append(.passRetained(task))
        stopLibuvIfInside()
    }

    /// Set while the loop is inside `uv_run`.
    @exclusivity(unchecked) private var isInsideLibuv = false

    /// Work became ready inside a libuv callback (a timer fired, data arrived):
    /// libuv knows nothing of our queues and could go on to block in `epoll_wait`,
    /// so ask it to finish this iteration without blocking.
    private func stopLibuvIfInside() {
        if isInsideLibuv { uv_stop(loop) }
    }

    /// One `uv_run` iteration.
    private func runLibuv(_ mode: uv_run_mode) {
        isInsideLibuv = true
        if mode == UV_RUN_ONCE {
            let start = uv_hrtime()
            uv_run(loop, mode)
            counters.nanosecondsBlocked += uv_hrtime() - start
        } else {
            uv_run(loop, mode)
        }
        isInsideLibuv = false
        counters.loopIterations += 1
    }

    /// How many task polls and jobs may run between two loop iterations while
    /// work stays ready (Tokio's `event_interval`). Bounds how long a task that
    /// keeps waking itself can hold off timers and I/O (invariant 6), without
    /// paying an `epoll_wait` per poll.
    static let pollsPerLoopIteration = 61

    /// Polls ready tasks in queue order, at most `limit` of them; returns how
    /// many. A task woken meanwhile goes to the back of the queue.
    private func runReadyTasks(limit: Int) -> Int {
        var polled = 0
        while polled < limit, !ready.isEmpty {
            let next = scheduler == nil ? ready.popFirst()! : ready.remove(at: scheduler!.next(below: ready.count))
            polled += 1
            RawTask.run(next)
        }
        counters.polls += polled
        return polled
    }

    private func drainRemote() {
        remote.drain { work in
            switch work {
            case .task(let task): ready.append(.passRetained(task))
            case .job(let job, let onTaskExecutor): jobs.append((job, onTaskExecutor))
            }
        }
    }

    // MARK: - Swift concurrency jobs

    /// Jobs for the loop's executors, run between task polls.
    @exclusivity(unchecked) private var jobs = [(UnownedJob, onTaskExecutor: Bool)]()
    /// The loop's executors (see `Concurrency/`); immutable, so other threads
    /// may read it.
    private(set) var executors: LoopExecutors!
    /// When set, a loop with nothing to do waits for work from other threads
    /// instead of reporting itself stuck (a `LoopThread`'s loop serves others).
    var servesForeignWork = false

    /// A job enqueued on the loop thread itself: no lock, no system call.
    func enqueueLocal(_ job: UnownedJob, onTaskExecutor: Bool) {
        jobs.append((job, onTaskExecutor))
        stopLibuvIfInside()
    }

    /// Runs the jobs queued now (jobs they enqueue wait for the next turn);
    /// returns how many ran.
    private func runJobs() -> Int {
        guard !jobs.isEmpty else { return 0 }
        let batch = jobs
        jobs.removeAll(keepingCapacity: true)
        let executors = self.executors!
        counters.jobs += batch.count
        for (job, onTaskExecutor) in batch {
            if onTaskExecutor {
                // Not isolated to the serial executor: see `LoopExecutors`.
                job.runSynchronously(on: executors.task.asUnownedTaskExecutor())
            } else {
                job.runSynchronously(on: executors.serial.asUnownedSerialExecutor())
            }
        }
        return batch.count
    }

    // MARK: - Running

    /// Runs the loop on the calling thread until `main` completes.
    ///
    /// Throws `.stuck` when no task is ready and nothing can wake one, after
    /// cancelling `main`; `.reentrantBlock` when already running.
    @usableFromInline
    func drive(until main: Unmanaged<RawTask>) throws(WeftError) {
        guard !isRunning else {
            throw WeftError(.reentrantBlock, operation: "block(on:)")
        }
        running.store(true, ordering: .releasing)
        driveStartedAt = uv_hrtime()
        let previous = weft_current_runtime()
        weft_set_current_runtime(Unmanaged.passUnretained(self).toOpaque())
        let isDeterministic = scheduler != nil
        let outerRandomState = isDeterministic ? weft_swap_random_state(selectRandomState) : 0
        defer {
            nanosecondsInsideDrive += uv_hrtime() - driveStartedAt!
            driveStartedAt = nil
            if isDeterministic { selectRandomState = weft_swap_random_state(outerRandomState) }
            weft_set_current_runtime(previous)
            running.store(false, ordering: .releasing)
        }
        let isDone = { main._withUnsafeGuaranteedRef { $0.isComplete } }
        // Work runs until none is ready, then the loop blocks for events; while
        // work stays ready, a non-blocking loop iteration runs every `budget` units.
        var budget = Self.pollsPerLoopIteration
        while !isDone() {
            drainRemote()
            if !hasReadyWork && timers.virtualClock != nil && advanceVirtualTime() {
                budget = Self.pollsPerLoopIteration
                continue
            }
            if !hasReadyWork {
                do {
                    try blockForEvents(main: main)
                } catch {
                    main._withUnsafeGuaranteedRef { $0.perform(.cancel(.aborted)) }
                    throw error
                }
                budget = Self.pollsPerLoopIteration
                continue
            }
            budget -= runJobs()
            if budget > 0 { budget -= runReadyTasks(limit: budget) }
            if budget <= 0 && !isDone() {
                runLibuv(UV_RUN_NOWAIT)
                budget = Self.pollsPerLoopIteration
            }
        }
    }

    /// Deterministic mode, nothing ready: takes in I/O that has already arrived
    /// (waiting up to 10 ms of real time while some is in flight), then jumps the
    /// virtual clock from timer to timer until one wakes a task. True when that
    /// made work ready.
    private func advanceVirtualTime() -> Bool {
        runLibuv(UV_RUN_NOWAIT)
        drainRemote()
        if hasReadyWork { return true }
        if hasActiveIO {
            runLibuvOnce(blockingAtMostMilliseconds: 10)
            drainRemote()
            if hasReadyWork { return true }
        }
        while !hasReadyWork, timers.fireNext() {}
        return hasReadyWork
    }

    /// Tasks or Swift jobs are queued to run.
    private var hasReadyWork: Bool { !ready.isEmpty || !jobs.isEmpty }

    /// Handles or requests that the OS may complete. Our async handle is always
    /// active; anything beyond it is real work.
    private var hasActiveIO: Bool {
        weft_loop_active_handles(loop) > 1 || weft_loop_active_requests(loop) > 0
    }

    /// One blocking loop iteration that ends after `milliseconds` at the latest
    /// (the watchdog timer bounds it).
    private func runLibuvOnce(blockingAtMostMilliseconds milliseconds: UInt64) {
        uv_timer_start(watchdog, { _ in }, milliseconds, 0)
        runLibuv(UV_RUN_ONCE)
        uv_timer_stop(watchdog)
    }

    /// Deterministic mode: moves the virtual clock forward, firing the timers
    /// due on the way; their tasks run at the next `drive`.
    func advanceVirtualTime(by duration: Duration) {
        timers.advanceVirtualTime(by: MonotonicTime.nanoseconds(duration))
    }

    /// Blocks in the OS poll until an event, unless nothing could ever produce one.
    private func blockForEvents(main: Unmanaged<RawTask>) throws(WeftError) {
        switch progressSource(main: main) {
        case .events:
            if let wait = releaseFreeMemoryIfDue() {
                runLibuvOnce(blockingAtMostMilliseconds: wait)  // then release it
            } else {
                runLibuv(UV_RUN_ONCE)
            }
        case .outsideWakerOnly:
            runLibuvOnce(blockingAtMostMilliseconds: Self.stuckRecheckMilliseconds)
        case .none:
            throw WeftError(.stuck, operation: "block(on:)", detail: stuckDetail())
        }
    }

    private enum ProgressSource { case events, outsideWakerOnly, none }

    /// Streams closed on this loop: the moment a connection's buffers and
    /// queued writes are freed.
    @exclusivity(unchecked) var streamsClosed = 0
    /// Tasks spawned, read buffers freed, streams closed, and the time, when
    /// free memory was last released.
    @exclusivity(unchecked) private var tasksSpawnedAtLastRelease = 0
    @exclusivity(unchecked) private var readBufferOverflowsAtLastRelease = 0
    @exclusivity(unchecked) private var streamsClosedAtLastRelease = 0
    @exclusivity(unchecked) private var lastReleaseNanoseconds: UInt64 = 0

    /// Before blocking, after a burst of work (128 tasks or more spawned since
    /// the last time, more reads in flight than the read-buffer cache holds, or
    /// a stream closed: an async server's connections are Swift tasks, not Weft
    /// tasks, and their reads and writes are arrays the loop does not count)
    /// and at most ten times a second, hands the free pages of the heap back to
    /// the OS.
    /// glibc keeps freed memory inside its heap, so without this a server's RSS
    /// ratchets up with every burst of connections while its heap in use does
    /// not (found by the soak, docs/RELIABILITY.md).
    ///
    /// Returns the milliseconds until a release held back by the rate limit may
    /// run, so the loop wakes up for it rather than block with it pending (an
    /// idle server would otherwise keep the last burst's pages).
    private func releaseFreeMemoryIfDue() -> UInt64? {
        guard counters.tasksSpawned - tasksSpawnedAtLastRelease >= 128
            || readBuffers.overflowCount != readBufferOverflowsAtLastRelease
            || streamsClosed != streamsClosedAtLastRelease else { return nil }
        let now = uv_hrtime()
        let sinceLast = now - lastReleaseNanoseconds
        guard sinceLast >= 100_000_000 else { return (100_000_000 - sinceLast) / 1_000_000 + 1 }
        tasksSpawnedAtLastRelease = counters.tasksSpawned
        readBufferOverflowsAtLastRelease = readBuffers.overflowCount
        streamsClosedAtLastRelease = streamsClosed
        lastReleaseNanoseconds = now
        weft_release_free_memory()
        return nil
    }

    /// What could still wake a task when the ready queue is empty (invariant 7).
    private func progressSource(main: Unmanaged<RawTask>) -> ProgressSource {
        if hasActiveIO { return .events }
        if !remote.isEmpty || servesForeignWork { return .events }
        return anyWakerHeldOutside(main: main) ? .outsideWakerOnly : .none
    }

    /// Whether some pending task is referenced from somewhere the runtime does not
    /// account for: a waker kept by another thread or by user state.
    ///
    /// A task's known references are the registry's, the one `block(on:)` holds
    /// for `main`, the join slots of other tasks holding its waker, and (when its
    /// own join slot is set) the handle of the task awaiting it. Anything beyond is
    /// assumed to be a waker that may still fire, so the answer errs towards
    /// "not stuck".
    private func anyWakerHeldOutside(main: Unmanaged<RawTask>) -> Bool {
        let joinSlotReferences = countJoinSlotReferences()
        return registry.contains { task in
            let pointer = Unmanaged.passUnretained(task).toOpaque()
            var known = 1 + (joinSlotReferences[pointer] ?? 0)
            if task.state.load(ordering: .acquiring) & TaskState.joinWaker != 0 { known += 1 }
            if pointer == main.toOpaque() { known += 1 }
            return weft_strong_retain_count(pointer) > known
        }
    }

    private func countJoinSlotReferences() -> [UnsafeMutableRawPointer: Int] {
        var counts: [UnsafeMutableRawPointer: Int] = [:]
        registry.forEach { task in
            if task.state.load(ordering: .acquiring) & TaskState.joinWaker != 0,
               let waiter = task.joinWaker?.target as? RawTask {
                counts[Unmanaged.passUnretained(waiter).toOpaque(), default: 0] += 1
            }
        }
        return counts
    }

    /// The counters, with the wakes from other threads (counted by the inbox).
    var statistics: RuntimeStatistics {
        var statistics = counters
        statistics.foreignWakes = remote.foreignWakes
        return statistics
    }

    /// A snapshot of the counters (busy time included) and of every live task;
    /// on the loop thread.
    func report() -> RuntimeReport {
        var statistics = self.statistics
        statistics.nanosecondsBusy = busyNanoseconds
        var tasks: [TaskSnapshot] = []
        registry.forEach { task in
            var name: String?
            withUnsafeMutablePointer(to: &name) { task.perform(.describe(UnsafeMutableRawPointer($0))) }
            let state = task.state.load(ordering: .acquiring)
            tasks.append(TaskSnapshot(name: name ?? "?", isScheduled: state & TaskState.scheduled != 0,
                                      isAwaited: state & TaskState.joinWaker != 0))
        }
        return RuntimeReport(statistics: statistics, tasks: tasks, openHandleCount: openHandleCount,
                             activeRequestCount: activeRequestCount, pendingTimerCount: timers.pendingCount)
    }

    /// Time inside `drive` not spent blocked in the OS poll, in nanoseconds.
    private var busyNanoseconds: UInt64 {
        var inside = nanosecondsInsideDrive
        if let start = driveStartedAt { inside += uv_hrtime() - start }
        return inside > counters.nanosecondsBlocked ? inside - counters.nanosecondsBlocked : 0
    }

    private func stuckDetail() -> String {
        "\(counters.tasksAlive) task(s) pending, none ready, no active handle or request, no waker held outside the runtime"
    }

    // MARK: - Shutdown

    /// Cancels every task (dropping its future, which stops its timers and I/O)
    /// and closes the handles the core owns. Idempotent.
    func shutdown() {
        guard !isShutDown else { return }
        isShutDown = true
        let previous = weft_current_runtime()
        weft_set_current_runtime(Unmanaged.passUnretained(self).toOpaque())
        defer { weft_set_current_runtime(previous) }
        // Dropping a future may wake (or, through a JoinHandle, complete) others.
        while let task = registry.last {
            task.perform(.cancel(.runtimeShutDown))
        }
        drainRemote()
        while let task = ready.popFirst() { task.release() }
        // Swift jobs must run somewhere, or their tasks would never finish.
        for (job, onTaskExecutor) in jobs { remote.orphans.enqueue(job, onTaskExecutor: onTaskExecutor) }
        jobs.removeAll()
        timers.close()
        timers.virtualClock?.uninstall()
        weft_close_and_free(weft_timer_handle(watchdog))
        if let async = remote.close() {
            weft_close_and_free(weft_async_handle(async))
        }
        uv_run(loop, UV_RUN_NOWAIT)
    }

    /// Handles on the loop that are not closing (for leak checks).
    var openHandleCount: Int { Int(weft_loop_open_handles(loop)) }

    /// Requests in flight on the loop (for leak checks).
    var activeRequestCount: Int { Int(weft_loop_active_requests(loop)) }
}
