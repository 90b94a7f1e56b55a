import CLibUV
import CWeftSupport

/// The executor loop (docs/ARCHITECTURE.md, "The executor loop"): ready tasks
/// and jobs run in batches, with a libuv iteration between batches, and the
/// loop blocks in the OS poll only when nothing is ready.
extension EventLoop {
    /// How many task polls and jobs may run between two loop iterations while
    /// work stays ready (Tokio's `event_interval`). Bounds how long a task that
    /// keeps waking itself can hold off timers and I/O, without paying an
    /// `epoll_wait` per poll.
    static let pollsPerLoopIteration = 61

    /// How long the loop blocks before re-checking whether it is stuck, while the
    /// only possible source of progress is a waker held outside the runtime.
    static let stuckRecheckMilliseconds: UInt64 = 100

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
        // The time futures made here read this loop's clock, not the newest
        // virtual clock of the thread (another deterministic runtime's).
        let outerClock = weft_virtual_clock_drive(timers.virtualClock?.time)
        // A `block(on:)` nested in a task of another runtime: that task's poll
        // goes on with the budget it had, not the unlimited one our polls leave.
        let outerBudget = weft_budget_get()
        defer {
            nanosecondsInsideDrive += uv_hrtime() - driveStartedAt!
            driveStartedAt = nil
            if isDeterministic { selectRandomState = weft_swap_random_state(outerRandomState) }
            weft_virtual_clock_restore(outerClock)
            weft_budget_set(outerBudget)
            weft_set_current_runtime(previous)
            running.store(false, ordering: .releasing)
        }
        let isDone = { main._withUnsafeGuaranteedRef { $0.isComplete } }
        // Work runs until none is ready, then the loop blocks for events; while
        // work stays ready, a non-blocking loop iteration runs every `budget` units.
        var budget = Self.pollsPerLoopIteration
        // When the work since the last look at the OS began (0: none, or
        // nobody observes): timed to the next look, however many turns it
        // took (a turn ends when the queue empties, and the next begins at
        // once with the jobs and wakes that came meanwhile).
        var batchStart: UInt64 = 0
        defer { endBatch(startedAt: &batchStart) }
        while !isDone() {
            drainInbox()
            if !hasReadyWork { endBatch(startedAt: &batchStart) }
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
            if batchStart == 0 && RuntimeEvents.isObserving { batchStart = uv_hrtime() }
            budget -= runJobs()
            // At least one ready task each turn: with a budget's worth of
            // Swift jobs queued at every turn (tasks that keep yielding), no
            // Weft task ran again, the stop of a `LoopThread` among them.
            budget -= runReadyTasks(limit: max(budget, 1))
            if budget <= 0 && !isDone() {
                endBatch(startedAt: &batchStart)
                runLibuv(UV_RUN_NOWAIT)
                budget = Self.pollsPerLoopIteration
            }
        }
    }

    /// Polls ready tasks in queue order, at most `limit` of them; returns how
    /// many. A task woken meanwhile goes to the back of the queue.
    private func runReadyTasks(limit: Int) -> Int {
        var polled = 0
        while polled < limit, !ready.isEmpty {
            let next = scheduler == nil ? ready.popFirst()! : ready.remove(at: scheduler!.next(below: ready.count))
            polled += 1
            taskBeingPolled = next.toOpaque()
            RawTask.run(next)
            taskBeingPolled = nil
        }
        counters.polls += polled
        return polled
    }

    /// Runs the jobs queued now (jobs they enqueue wait for the next turn);
    /// returns how many ran. Each starts with a full ``Budget``, as a task
    /// poll does: a Swift task that keeps finding its awaits ready yields.
    ///
    /// The batch is swapped into ``EventLoop/runningJobs`` rather than copied
    /// out: a copy shares `jobs`' buffer, so emptying `jobs` (keeping its
    /// capacity) allocated a new one for every batch.
    private func runJobs() -> Int {
        guard !jobs.isEmpty else { return 0 }
        swap(&jobs, &runningJobs)
        let count = runningJobs.count
        counters.jobs += count
        for index in 0..<count {
            Budget.startPoll()
            runningJobs[index].run()
            Budget.endPoll()
        }
        runningJobs.removeAll(keepingCapacity: true)
        return count
    }

    /// One `uv_run` iteration.
    private func runLibuv(_ mode: uv_run_mode) {
        isInsideLibuv = true
        if mode == UV_RUN_ONCE {
            let start = uv_hrtime()
            uv_run(uvLoop, mode)
            counters.nanosecondsBlocked += uv_hrtime() - start
        } else {
            uv_run(uvLoop, mode)
        }
        isInsideLibuv = false
        counters.loopIterations += 1
    }

    /// One blocking loop iteration that ends after `milliseconds` at the latest
    /// (the watchdog timer bounds it).
    private func runLibuvOnce(blockingAtMostMilliseconds milliseconds: UInt64) {
        uv_timer_start(watchdog, { _ in }, milliseconds, 0)
        runLibuv(UV_RUN_ONCE)
        uv_timer_stop(watchdog)
    }

    /// Ends the batch of work begun at `start` (0: none timed), reporting it
    /// if it held the thread past the threshold.
    private func endBatch(startedAt start: inout UInt64) {
        guard start != 0 else { return }
        let elapsed = uv_hrtime() - start
        start = 0
        if elapsed > RuntimeEvents.blockedThresholdNanoseconds.load(ordering: .relaxed) {
            RuntimeEvents.report(.loopBlocked(.nanoseconds(Int64(elapsed))))
        }
    }

    /// Tasks or jobs are queued to run.
    private var hasReadyWork: Bool { !ready.isEmpty || !jobs.isEmpty }

    /// Handles or requests that the OS may complete. Our async handle is always
    /// active; anything beyond it is real work.
    var hasActiveIO: Bool {
        weft_loop_active_handles(uvLoop) > 1 || weft_loop_active_requests(uvLoop) > 0
    }

    /// The ready queue's first capacity, which it shrinks back to when idle.
    static var readyCapacity: Int { 1024 }

    /// The capacity past which an idle loop frees a job list.
    static var keptJobCapacity: Int { 4096 }

    /// Whether a burst left the loop's own queues larger than an idle loop
    /// keeps them: worth a release when it blocks, though nothing else made
    /// one due (tasks woken and ended on the loop, jobs and other threads'
    /// wakes, report no event). Each is what ``releaseIdleMemory()`` frees,
    /// so the check is false again after one release.
    private var queuesOutgrewIdle: Bool {
        ready.outgrew(Self.readyCapacity)
            || jobs.isSparse(keeping: Self.keptJobCapacity) || runningJobs.isSparse(keeping: Self.keptJobCapacity)
            || drainedItems.isSparse(keeping: WakeInbox.keptCapacity) || registry.isMostlyEmpty
    }

    /// What the loop frees before the heap trim, when it is about to wait:
    /// its attachments' idle memory, and what a burst made its own queues
    /// grow to, empty (or mostly empty) now: the ready queue, the job list,
    /// the task registry, the inbox's lists and the timers' fired wakers keep
    /// their peak capacity otherwise, still allocated, which the trim cannot
    /// return (a million tasks spawned at once left 8 MiB in the ready queue
    /// and 8 MiB in the registry for good).
    private func releaseIdleMemory() {
        attachments.releaseIdleMemory()
        ready.shrinkIfEmpty(to: Self.readyCapacity)
        // The two job lists swap at every batch: either may hold the big one.
        jobs.shrinkIfSparse(keeping: Self.keptJobCapacity)
        runningJobs.shrinkIfSparse(keeping: Self.keptJobCapacity)
        registry.shrinkIfMostlyEmpty()
        inbox.releaseIdleMemory(spare: &drainedItems)
        timers.releaseIdleMemory()
    }

    /// Blocks in the OS poll until an event, unless nothing could ever produce one.
    private func blockForEvents(main: Unmanaged<RawTask>) throws(WeftError) {
        if queuesOutgrewIdle { noteMemoryFreed() }
        switch progressSource(main: main) {
        case .events:
            if let wait = heapTrim.releaseIfDue(tasksSpawned: counters.tasksSpawned, releasingFirst: releaseIdleMemory) {
                runLibuvOnce(blockingAtMostMilliseconds: wait)  // then release it
            } else {
                runLibuv(UV_RUN_ONCE)
            }
        case .outsideWakerOnly:
            // Waiting for another thread's wake is idle too: after a burst,
            // the memory it freed goes back to the system.
            let wait = heapTrim.releaseIfDue(tasksSpawned: counters.tasksSpawned, releasingFirst: releaseIdleMemory)
            runLibuvOnce(blockingAtMostMilliseconds: min(wait ?? Self.stuckRecheckMilliseconds, Self.stuckRecheckMilliseconds))
        case .none:
            let error = WeftError(.stuck, operation: "block(on:)", detail: stuckDetail())
            RuntimeEvents.report(.stuck(error))
            throw error
        }
    }

    // MARK: - Deterministic mode

    /// Nothing ready: takes in I/O that has already arrived (waiting up to 10
    /// ms of real time while some is in flight), then jumps the virtual clock
    /// from timer to timer until one wakes a task. True when that made work
    /// ready.
    private func advanceVirtualTime() -> Bool {
        runLibuv(UV_RUN_NOWAIT)
        drainInbox()
        if hasReadyWork { return true }
        if hasActiveIO {
            runLibuvOnce(blockingAtMostMilliseconds: 10)
            drainInbox()
            if hasReadyWork { return true }
        }
        while !hasReadyWork, timers.fireNext() {}
        return hasReadyWork
    }

    /// Moves the virtual clock forward, firing the timers due on the way; their
    /// tasks run at the next `drive`.
    func advanceVirtualTime(by duration: Duration) {
        timers.advanceVirtualTime(by: MonotonicTime.nanoseconds(duration))
    }
}
