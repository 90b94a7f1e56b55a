import CLibUV
import CWeftSupport
import Synchronization

/// The executor behind a ``Runtime``: one `uv_loop_t`, the ready queue of
/// tasks, the queue of jobs, the registry of live tasks and the timer driver.
/// Confined to the thread that runs it (docs/ARCHITECTURE.md, "Threads");
/// other threads reach it only through `inbox`.
///
/// Layout: this file holds its state, its life and its queues;
/// `EventLoop+Drive.swift` runs it, `StuckDetection.swift` tells when it can no
/// longer make progress, `HeapTrim.swift` hands free memory back, and
/// `EventLoop+Report.swift` reports on it. The layers above keep their
/// per-loop state in `attachments` and hand it work as ``LoopJob``s.
///
/// Lifetime: owned by its `Runtime` and by the owners of the handles on its
/// loop. `shutdown()` cancels every task and closes the handles the loop itself
/// owns; `deinit` closes the loop once nothing uses it.
@usableFromInline
final class EventLoop {
    let uvLoop: UnsafeMutablePointer<uv_loop_t>
    /// Tasks to poll, each holding one retained reference (taken on enqueue,
    /// given back after the poll).
    let ready = RingBuffer<Unmanaged<RawTask>>(capacity: EventLoop.readyCapacity)
    /// Jobs of the layers above, run between task polls.
    @exclusivity(unchecked) var jobs = [QueuedJob]()
    /// The batch of jobs running now (see `runJobs()`); empty between batches.
    @exclusivity(unchecked) var runningJobs = [QueuedJob]()
    @usableFromInline let inbox: WakeInbox
    /// The inbox's items while `drainInbox()` hands them out; empty otherwise.
    @exclusivity(unchecked) var drainedItems = [InboxItem]()
    let timers: TimerDriver
    /// Per-loop state of the layers above (see ``LoopAttachmentKey``).
    let attachments = LoopAttachments()
    /// Armed only while the loop blocks with no handle active but a waker held
    /// outside, so that the stuck check runs again if that waker is dropped.
    let watchdog: UnsafeMutablePointer<uv_timer_t>
    /// The live (incomplete) tasks, so `shutdown()` can cancel them all.
    let registry = TaskRegistry()
    /// Swift tasks the bridge started on this loop and still running (see
    /// ``RuntimeStatistics/swiftTasksAlive``); counted from any thread.
    let swiftTasks = SwiftTaskCount()
    @exclusivity(unchecked) var counters = RuntimeStatistics()
    /// When free heap memory goes back to the OS.
    @exclusivity(unchecked) var heapTrim = HeapTrim()
    /// Set while a thread is inside `drive`; read by other threads in
    /// `isOnLoopThread`, hence atomic.
    let running = Atomic<Bool>(false)
    @usableFromInline var isRunning: Bool { running.load(ordering: .acquiring) }
    /// Set once, by ``shutdown()``. Read by the thread checks on any thread,
    /// and the shutdown itself may run on whichever thread dropped the
    /// runtime (`Runtime.deinit`), hence atomic.
    private let shutDown = Atomic<Bool>(false)
    @usableFromInline var isShutDown: Bool { shutDown.load(ordering: .acquiring) }
    /// Held by every close made once the loop is shut down
    /// (``runLateClose(_:)``), and by the end of the shutdown itself:
    /// nobody runs the loop then, so any thread may ask for a close, and each
    /// runs libuv's `uv_close` on the loop's lists and its owner's state.
    private let lateCloses = Mutex<Void>(())
    /// Set, under `lateCloses`, once a thread of its own runs the loop for the
    /// requests still in flight after the shutdown (``finishRequestsInBackground()``).
    @exclusivity(unchecked) private var isFinishingRequests = false
    /// Unique per process (never reused, unlike the object's address), so a dead
    /// loop's executors never mistake a new loop for theirs.
    @usableFromInline let identity = EventLoop.nextIdentity.add(1, ordering: .relaxed).newValue
    private static let nextIdentity = Atomic<UInt64>(0)
    /// The thread that created the runtime (`weft_thread_identity`): it owns
    /// it while it is not running. Not its `pthread_t`: a thread started after
    /// it ended (a later `LoopThread`'s) can have the same one, and passed the
    /// check for the dead loop's streams, reaching its loop unlocked.
    private let ownerThread = weft_thread_identity()
    /// When set, a loop with nothing to do waits for work from other threads
    /// instead of reporting itself stuck (a `LoopThread`'s loop serves others).
    var servesForeignWork = false

    /// When the current `drive` began, and the time spent in earlier ones
    /// (`uv_hrtime` nanoseconds), for the busy-time statistic.
    @exclusivity(unchecked) var driveStartedAt: UInt64?
    @exclusivity(unchecked) var nanosecondsInsideDrive: UInt64 = 0
    /// Set while the loop is inside `uv_run`.
    @exclusivity(unchecked) var isInsideLibuv = false
    /// The task being polled (its address), nil between polls: a report
    /// taken inside that poll must not read the future the poll is changing.
    @exclusivity(unchecked) var taskBeingPolled: UnsafeMutableRawPointer?
    /// Deterministic mode: the scheduler's generator (nil: FIFO).
    @exclusivity(unchecked) var scheduler: SplitMix64?
    /// Deterministic mode: the state of `weft_random` (select's choices) while
    /// this loop is not running; swapped in and out around `drive`.
    @exclusivity(unchecked) var selectRandomState: UInt64 = 0

    /// ``RuntimeOptions/connectionBufferBudget``, which the reactor keeps.
    let connectionBufferBudget: Int

    init(options: RuntimeOptions) throws(WeftError) {
        guard options.connectionBufferBudget >= 64 << 10 else {
            throw WeftError(.invalidArgument, operation: "Runtime(options:)",
                            detail: "connectionBufferBudget \(options.connectionBufferBudget) is below 65536 bytes")
        }
        connectionBufferBudget = options.connectionBufferBudget
        // Writes to a closed socket must fail with EPIPE, not kill the process.
        weft_ignore_sigpipe()
        // No socket or loop descriptor may take the number of a closed 0, 1 or 2.
        weft_fill_closed_standard_descriptors()
        // The heap top stays put under a busy loop (HeapTrim hands memory back).
        weft_configure_malloc()
        uvLoop = .allocate(capacity: 1)
        var error: Int32 = 0
        do {
            try check(uv_loop_init(uvLoop), "uv_loop_init")
        } catch {
            uvLoop.deallocate()
            throw error
        }
        // The async handle stays referenced so that UV_RUN_ONCE blocks (instead of
        // returning at once) while a task waits on another thread.
        guard let async = weft_async_new(uvLoop, { _ in }, &error) else {
            uv_loop_close(uvLoop)
            uvLoop.deallocate()
            throw WeftError(uvCode: error, operation: "uv_async_init")
        }
        guard let watchdog = weft_timer_new(uvLoop, &error) else {
            weft_close_and_free(weft_async_handle(async))
            uv_run(uvLoop, UV_RUN_NOWAIT)
            uv_loop_close(uvLoop)
            uvLoop.deallocate()
            throw WeftError(uvCode: error, operation: "uv_timer_init")
        }
        self.watchdog = watchdog
        inbox = WakeInbox(async: async)
        var virtualClock: VirtualClock?
        if let seed = options.deterministicSeed {
            var generator = SplitMix64(seed: seed)
            selectRandomState = generator.next() | 1
            scheduler = generator
            virtualClock = VirtualClock()
        }
        do {
            timers = try TimerDriver(loop: uvLoop, virtualClock: virtualClock)
        } catch {
            virtualClock?.uninstall()
            _ = inbox.close().async.map { weft_close_and_free(weft_async_handle($0)) }
            weft_close_and_free(weft_timer_handle(watchdog))
            uv_run(uvLoop, UV_RUN_NOWAIT)
            uv_loop_close(uvLoop)
            uvLoop.deallocate()
            throw error
        }
    }

    deinit {
        shutdown()
        // Close callbacks of handles closed since shutdown run here; then the loop
        // must be empty. Thread-pool work that had already started (spawnBlocking,
        // a name lookup) cannot be cancelled: a background thread runs the loop
        // until it completes, then closes and frees it. If a handle is still open
        // its memory must not be freed under it, so the loop is leaked rather
        // than closed.
        uv_run(uvLoop, UV_RUN_NOWAIT)
        if uv_loop_close(uvLoop) == 0 {
            uvLoop.deallocate()
        } else if weft_loop_active_requests(uvLoop) > 0 && weft_loop_open_handles(uvLoop) == 0 {
            _ = weft_finish_loop_in_background(uvLoop) { $0?.deallocate() }
        }
    }

    /// Whether the calling thread may touch this loop: it is running it, or it
    /// created it and nobody is running it. Inlined: every poll method of a
    /// handle asks (four times per echo round trip), and the common answer is
    /// one thread-local load.
    @inlinable var isOnLoopThread: Bool {
        isRunningOnCallingThread || isOwnedIdleByCallingThread
    }

    /// Whether the calling thread may use this loop's handles and requests:
    /// it is running the loop, or it created it, nobody is running it, the
    /// thread runs no other loop either, and the loop was not shut down.
    /// Inside another runtime's `block(on:)`, or after the shutdown, a poll
    /// would leave its waker with a loop nobody runs, and wait for ever; it
    /// fails instead (``wrongThread(_:detail:)``). The closes that only
    /// choose between closing at once and handing the close to the loop ask
    /// ``closesHere``.
    @inlinable var isHandleThread: Bool {
        isRunningOnCallingThread || (isOwnedIdleOutsideAnyLoop && !isShutDown)
    }

    /// Whether the calling thread created this loop, nobody is running it,
    /// and the thread runs no other loop either.
    @inlinable var isOwnedIdleOutsideAnyLoop: Bool {
        weft_current_runtime() == nil && isOwnedIdleByCallingThread
    }

    /// The error for using this loop's handles or requests from the calling
    /// thread, if it may not (``isHandleThread``): `.shutDown` on the thread
    /// that owned the loop once it was shut down, `.wrongThread` otherwise.
    /// `operation` is built only then. The one thread check of every
    /// handle's and request's poll and call: on the loop thread one
    /// thread-local load and a comparison.
    @inline(__always)
    func wrongThread(_ operation: @autoclosure () -> String, detail: String = "") -> WeftError? {
        isHandleThread ? nil : refusal(operation(), detail: detail)
    }

    /// The error for using this loop's handles, or opening new ones, once
    /// it was shut down.
    func shutDownError(_ operation: String) -> WeftError {
        WeftError(.shutDown, operation: operation, detail: "the runtime was shut down; nothing would ever serve it")
    }

    @inline(never)
    private func refusal(_ operation: String, detail: String) -> WeftError {
        if isShutDown && isOwnedIdleOutsideAnyLoop {
            return shutDownError(operation)
        }
        return WeftError(.wrongThread, operation: operation, detail: detail)
    }

    /// Whether the calling thread created this loop and nobody is running it.
    @usableFromInline var isOwnedIdleByCallingThread: Bool {
        !isRunning && ownerThread == weft_thread_identity()
    }

    /// Whether the calling thread is running this loop right now.
    @inlinable
    var isRunningOnCallingThread: Bool {
        weft_current_runtime() == Unmanaged.passUnretained(self).toOpaque()
    }

    /// Calls `body` with the loop running on the calling thread, if any,
    /// without retaining it (it is alive: it is running here).
    @inlinable
    static func withCurrent<R>(_ body: (EventLoop?) -> R) -> R {
        guard let pointer = weft_current_runtime() else { return body(nil) }
        return Unmanaged<EventLoop>.fromOpaque(pointer)._withUnsafeGuaranteedRef { body($0) }
    }

    /// The loop running on the calling thread, if any.
    @usableFromInline
    static var current: EventLoop? {
        guard let pointer = weft_current_runtime() else { return nil }
        return Unmanaged<EventLoop>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Calls `body` with this loop's attachment for `key`, made on first use.
    @inline(__always)
    func withAttachment<Value, Result>(_ key: LoopAttachmentKey<Value>, _ body: (Value) -> Result) -> Result {
        attachments.with(key, on: self, body)
    }

    // MARK: - Tasks and jobs

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

    /// A job enqueued on the loop thread itself: no lock, no system call. Not
    /// inlined: inlined into `enqueue(_:onLoop:inbox:)`, the append retained
    /// and released the borrowed loop again.
    @inline(never)
    func enqueueLocal(_ job: QueuedJob) {
        jobs.append(job)
        stopLibuvIfInside()
    }

    /// Runs `job` on the loop: queued at once on the loop thread, else
    /// through the inbox; told ``LoopJob/loopClosed()`` if the loop shut down.
    func enqueue(_ job: any LoopJob) {
        let queued = QueuedJob(job)
        if !Self.enqueue(queued, onLoop: identity, inbox: inbox) { queued.loopClosed(orphanage: nil) }
    }

    /// Queues `job` on the loop with `identity`: at once when called on its
    /// thread, else through its inbox. False, without queueing it, once the
    /// loop shut down. For a caller that holds only the loop's identity and
    /// inbox (the bridge's executors, which may outlive their loop).
    static func enqueue(_ job: QueuedJob, onLoop identity: UInt64, inbox: WakeInbox) -> Bool {
        // The running loop borrowed, not through `withCurrent`, whose closure
        // retained and released it around the append.
        let enqueuedHere = weft_current_runtime().map { pointer in
            Unmanaged<EventLoop>.fromOpaque(pointer)._withUnsafeGuaranteedRef { current in
                guard current.identity == identity else { return false }
                current.enqueueLocal(job)
                return true
            }
        } ?? false
        return enqueuedHere || inbox.enqueue(job)
    }

    /// Work became ready inside a libuv callback (a timer fired, data arrived):
    /// libuv knows nothing of our queues and could go on to block in `epoll_wait`,
    /// so ask it to finish this iteration without blocking.
    func stopLibuvIfInside() {
        if isInsideLibuv { uv_stop(uvLoop) }
    }

    /// Moves what other threads queued into the ready queue and the job queue.
    /// The check for an empty inbox is inlined into the caller (the executor
    /// loop asks several times per iteration, and the inbox is mostly empty).
    @inline(__always)
    func drainInbox() {
        if !inbox.isEmpty { drainQueuedItems() }
    }

    @inline(never)
    private func drainQueuedItems() {
        inbox.drain(using: &drainedItems) { item in
            switch item {
            case .task(let task): ready.append(.passRetained(task))
            case .job(let job): jobs.append(job)
            }
        }
    }

    // MARK: - Shutdown

    /// Cancels every task (dropping its future, which stops its timers and I/O)
    /// and closes the handles the loop itself owns. Idempotent.
    func shutdown() {
        guard !shutDown.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let previous = weft_current_runtime()
        weft_set_current_runtime(Unmanaged.passUnretained(self).toOpaque())
        defer { weft_set_current_runtime(previous) }
        // Dropping a future may wake (or, through a JoinHandle, complete) others.
        // A task whose abort was asked for and not yet carried out ends as aborted.
        while let task = registry.last {
            let aborted = task.state.pointee.load(ordering: .acquiring) & TaskState.cancelRequested != 0
            task.perform(.cancel(aborted ? .aborted : .runtimeShutDown))
        }
        drainInbox()
        while let task = ready.popFirst() { task.release() }
        // The orphanage (the bridge's executors) takes the Swift jobs the
        // loop can no longer run, held until nothing of the loop is torn
        // down any more. Looked for again until found: another thread may
        // make the executors while this runs (an await's first use of them),
        // and its job still reach the inbox before it closes.
        var held = attachments.orphanage
        held?.holdJobs()
        defer { held?.releaseJobs() }
        func orphanage() -> (any LoopJobOrphanage)? {
            if held == nil, let found = attachments.orphanage {
                found.holdJobs()
                held = found
            }
            return held
        }
        orphanQueuedJobs(orphanage())
        attachments.notifyShutdown()
        timers.close()
        timers.virtualClock?.uninstall()
        weft_close_and_free(weft_timer_handle(watchdog))
        // Once the inbox is closed, a close asked for on another thread runs
        // there (``runLateClose(_:)``): not while this still runs the loop.
        lateCloses.locked {
            let (async, refused) = inbox.close()
            for job in refused { job.loopClosed(orphanage: orphanage()) }
            if let async {
                weft_close_and_free(weft_async_handle(async))
            }
            uv_run(uvLoop, UV_RUN_NOWAIT)
            // What the shutdown itself woke on this thread (an await of a child
            // told `.shutDown`, a last callback) was queued here: it too.
            orphanQueuedJobs(orphanage())
            finishRequestsInBackground()
        }
    }

    /// Once the loop is shut down with no handle open, but requests still in
    /// flight on the thread pool (a file read waiting on a pipe, say, which
    /// cannot be cancelled once it runs): starts a thread that runs the loop,
    /// one pass at a time under the late-close lock, until their callbacks have
    /// run, so that they let go of what they hold (a file's request holds its
    /// file, and the file this loop). Nothing ran the loop again before: the
    /// loop was never freed, and with it the file's descriptor and buffers
    /// and every object of the runtime. The thread holds the loop, which it
    /// lets go when done, so that the loop's deinit closes it then. Called
    /// under `lateCloses`.
    private func finishRequestsInBackground() {
        guard !isFinishingRequests, weft_loop_open_handles(uvLoop) == 0, weft_loop_active_requests(uvLoop) > 0 else { return }
        let loop = UnsafeTransfer(value: self)
        guard let thread = try? startThread({ loop.value.runUntilRequestsFinish() }) else { return }
        pthread_detach(thread)
        isFinishingRequests = true
    }

    /// ``finishRequestsInBackground()``'s thread: each pass is a late close of
    /// nothing (``runLateClose(_:)``: under the lock, the loop run once without
    /// waiting, as no handle is open), and between passes it waits for the
    /// loop's backend (epoll) descriptor outside the lock.
    private func runUntilRequestsFinish() {
        let backend = uv_backend_fd(uvLoop)
        while true {
            runLateClose {}
            if lateCloses.locked({ weft_loop_active_requests(uvLoop) == 0 }) { return }
            _ = weft_wait_for(backend, Int16(POLLIN), 100)
        }
    }

    /// Whether a handle's or a file's close asked for on the calling thread
    /// runs at once: the loop runs here, or this thread owns it idle and it
    /// was not shut down. Otherwise the close goes to the loop's inbox, which
    /// once the loop is shut down refuses it to ``runLateClose(_:)``.
    var closesHere: Bool {
        isRunningOnCallingThread || (isOwnedIdleByCallingThread && !isShutDown)
    }

    /// Runs `close` for a close refused by the shut-down loop
    /// (``LoopJob/loopClosed()``), on the calling thread, one at a time: two
    /// threads closing handles of the loop at once (two streams dropped, or
    /// one stream closed on two threads) raced on its lists and on the
    /// owner's state. On the shutdown's own thread, which holds the lock
    /// already, it runs at once; so does a close that one asks for in turn
    /// (a released waker was the last owner of a task whose output held a
    /// handle of the loop): the thread counts as running the loop meanwhile,
    /// as the shutdown's does, and does not take the lock it holds again.
    /// Once the last handle is closed, the loop runs once without waiting,
    /// as the shutdown's last step does: libuv ends a closed handle, and
    /// fails the requests queued on it (writes, a shutdown) with `ECANCELED`,
    /// only there; until then each request kept its stream, and the stream
    /// the loop, alive, and the loop leaked with its descriptors. Not while
    /// a handle is open: the run would deliver its events on this thread,
    /// while the loop's creating thread may still be using it. What the
    /// close queued on the loop (a Swift task it resumed) goes to the
    /// orphanage at once.
    func runLateClose(_ close: () -> Void) {
        if isRunningOnCallingThread { return close() }
        lateCloses.locked {
            let previous = weft_current_runtime()
            weft_set_current_runtime(Unmanaged.passUnretained(self).toOpaque())
            defer { weft_set_current_runtime(previous) }
            close()
            if weft_loop_open_handles(uvLoop) == 0 {
                uv_run(uvLoop, UV_RUN_NOWAIT)
                finishRequestsInBackground()
            }
            // A Swift job the close (a continuation's last owner released)
            // or a callback queued here would wait for ever: nobody runs
            // this loop's queue again.
            orphanQueuedJobs(attachments.orphanage)
        }
    }

    /// Where ``spawn(_:)`` registers a task started by async code of a task
    /// still bound to a loop that has shut down (on that loop's orphaned-jobs
    /// queue, where no loop runs): a loop shut down as it is made, one for the
    /// process, so that the task is cancelled at once and its handle fails
    /// with ``JoinError/Reason/runtimeShutDown``, as Tokio's `spawn` does on a
    /// runtime that has shut down. The loop the caller was bound to may be
    /// gone by then (executors outlive their loop). Made on first use.
    ///
    /// `nonisolated(unsafe)`: a shut-down loop's state is touched only under
    /// its late-close lock (``registerAfterShutdown(_:)``, the one way tasks
    /// reach it); its tasks are complete before the lock is let go, and a
    /// complete task's handles and wakers no longer reach its loop.
    nonisolated(unsafe) static let afterShutdown: EventLoop = {
        let loop: EventLoop
        do {
            loop = try EventLoop(options: RuntimeOptions())
        } catch {
            preconditionFailure("spawn(_:) from a task whose loop has shut down needs a loop to cancel the new task on: \(error)")
        }
        loop.shutdown()
        return loop
    }()

    /// Registers `task` on this shut-down loop (which cancels it) from any
    /// thread: one at a time with the late closes, under their lock, since
    /// the orphaned-jobs queues of several loops may spawn at once.
    func registerAfterShutdown(_ task: RawTask) {
        precondition(isShutDown, "registerAfterShutdown(_:) on a running loop")
        runLateClose { register(task) }
    }

    /// Hands every queued job to the orphanage: a job must run somewhere (a
    /// Swift job, or its task would hang).
    private func orphanQueuedJobs(_ orphanage: (any LoopJobOrphanage)?) {
        while !jobs.isEmpty {
            let leftover = jobs
            jobs.removeAll()
            for job in leftover { job.loopClosed(orphanage: orphanage) }
        }
    }

    /// Handles on the loop that are not closing (for leak checks). After the
    /// shutdown, off the loop's own run, under `lateCloses`: `uv_walk` moves
    /// the handle list aside and back, and a late close or the request
    /// finisher may be walking or running the loop on another thread.
    var openHandleCount: Int {
        if isRunningOnCallingThread || !isShutDown { return Int(weft_loop_open_handles(uvLoop)) }
        return lateCloses.locked { Int(weft_loop_open_handles(uvLoop)) }
    }

    /// Requests in flight on the loop (for leak checks); under `lateCloses`
    /// after the shutdown, as ``openHandleCount``.
    var activeRequestCount: Int {
        if isRunningOnCallingThread || !isShutDown { return Int(weft_loop_active_requests(uvLoop)) }
        return lateCloses.locked { Int(weft_loop_active_requests(uvLoop)) }
    }
}
