import CWeftSupport
import Synchronization

/// Awaits a poll-based future from `async` code.
///
/// On a Weft loop thread (inside a task running on a ``LoopThread`` or a
/// ``Runtime``'s executor) the calling Swift task polls the future itself, and
/// while it is pending suspends until the future's waker fires; no Weft task is
/// spawned. Elsewhere it does so on ``LoopThread/shared``.
///
/// Off any loop, the first such call starts the shared loop; if it cannot
/// start (the process is out of descriptors or threads) this traps, as it
/// cannot throw that. Weft's own operations that can fail throw it instead.
///
/// **Cancellation:** cancelling the calling Swift task drops the future (its
/// timers stopped, its reads stopped, its handles released) and throws
/// `CancellationError`. So does a call from a task still bound to a loop that
/// has shut down (its jobs then run on the loop's orphaned-jobs queue, where no
/// loop will poll the future), and an await in flight when its loop shuts down:
/// the shutdown cancelled it. Weft's own async operations that can fail
/// report that case as their error instead, as their poll forms do:
/// ``WeftError/Kind/closed`` for one on a handle (a socket's, a pipe's, a
/// file's, a standard stream's, and a listener's `connections`, a UDP
/// socket's `datagrams`), ``WeftError/Kind/shutDown`` for one that would make
/// a handle, act on a path or run a child.
@inlinable
nonisolated(nonsending)
public func value<F: Future>(of future: sending F) async throws(CancellationError) -> sending F.Output {
    try await value(transferring: UnsafeTransfer(value: future)).value
}

/// `value(of:)` for a future already wrapped for the move to the loop thread.
/// Runs it on `loop` if given (a stream's own loop), else on the current loop,
/// else on the shared one.
@inlinable @inline(__always)
nonisolated(nonsending)
func value<F: Future>(
    transferring transfer: consuming UnsafeTransfer<F>, on loop: EventLoop? = nil
) async throws(CancellationError) -> UnsafeTransfer<F.Output> {
    do {
        return try await awaitValue(transferring: transfer, on: loop)
    } catch {
        if error.reason == .noSharedLoop { LoopThread.sharedLoopCannotStart() }
        throw CancellationError()
    }
}

/// Why an await on a loop ended without a value: the calling task was
/// cancelled (or its loop shut down). The internal await path throws this
/// rather than `CancellationError`, which is resilient (its size is unknown
/// here), so every call with it as the typed error allocated a buffer for it
/// on the task (two per async read or write).
@usableFromInline
struct AwaitCancelled: Error {
    @usableFromInline enum Reason: UInt8, Sendable {
        /// The calling task was cancelled.
        case cancelled
        /// Its loop has shut down (the await ended on that loop's
        /// orphaned-jobs queue).
        case loopShutDown
        /// Called off any loop, it found no shared loop, and could not start
        /// one (``LoopThread/startShared()`` threw).
        case noSharedLoop
    }

    /// Why. Told where the await ends: the caller's `catch` may run elsewhere
    /// (an await from off the loop is back on the caller's own executor by
    /// then, where nothing shows that the loop is gone).
    @usableFromInline let reason: Reason

    @inlinable init(loopShutDown: Bool) {
        reason = loopShutDown ? .loopShutDown : .cancelled
    }

    @inlinable init(_ reason: Reason) {
        self.reason = reason
    }
}

/// `value(transferring:on:)` with the internal error type, for the hot paths
/// (the async TCP operations) whose own error type is untyped.
@inlinable @inline(__always)
nonisolated(nonsending)
func awaitValue<F: Future>(
    transferring transfer: consuming UnsafeTransfer<F>, on loop: EventLoop? = nil
) async throws(AwaitCancelled) -> UnsafeTransfer<F.Output> {
    // Only the running loop's address is compared here (asking `loop` whether
    // its orphaned jobs run, too, retained and released it on every await).
    let isOnLoop = if let loop { loop.isRunningOnCallingThread } else { weft_current_runtime() != nil }
    if isOnLoop {
        // Already on the loop (a task preferring it, or an actor pinned to it):
        // stay on the caller's executor.
        return try await awaitOnLoop(transfer)
    }
    return try await awaitOffLoop(transfer, on: loop)
}

extension EventLoop {
    /// Whether the calling thread runs this loop's orphaned jobs, after its shutdown.
    @usableFromInline
    var isRunningOrphanedJobs: Bool { EventLoop.isRunningOrphanedJob(ofLoop: identity) }
}

/// What an async operation throws when its await ended with `cancelled`:
/// `shutDown` (the operation's own error, as its poll form reports it) if
/// that is because the loop it awaited on has shut down, else
/// `CancellationError`. A task nobody cancelled must not be told it was.
/// Called off any loop where the shared loop could not start, the reason
/// why, named as the operation `shutDown` names.
func awaitCancelledError(_ cancelled: AwaitCancelled, else shutDown: @autoclosure () -> WeftError) -> any Error {
    switch cancelled.reason {
    case .cancelled: CancellationError()
    case .loopShutDown: shutDown()
    case .noSharedLoop: LoopThread.sharedLoopFailure(in: shutDown().operation)
    }
}

/// Awaits `transfer`'s future, whose output is a `Result`, and returns its
/// value or throws its error: the async form of an operation that can fail.
/// Runs on `loop`, the loop of the handle the operation acts on (a file's, a
/// standard stream's), or with none (an operation that makes a handle or acts
/// on a path) on the calling task's loop, else the shared one.
///
/// An await that ended because that loop shut down throws what the poll form
/// would report, not `CancellationError` (a task nobody cancelled must not be
/// told it was): ``WeftError/Kind/closed`` for an operation on a handle, the
/// shutdown having closed it, and ``WeftError/Kind/shutDown`` for one with no
/// handle yet. The async socket reads and writes spell theirs out instead
/// (``SocketOwner/cancelledError(_:_:)`` says why).
nonisolated(nonsending)
func awaitResult<F: Future, Success>(
    transferring transfer: consuming UnsafeTransfer<F>, on loop: EventLoop? = nil, _ operation: String
) async throws -> Success where F.Output == Result<Success, WeftError> {
    do {
        return try await awaitValue(transferring: transfer, on: loop).value.get()
    } catch let cancelled as AwaitCancelled {
        throw awaitCancelledError(cancelled, else: loop == nil
            ? WeftError(.shutDown, operation: operation, detail: "its loop shut down")
            : closedByItsLoopsShutdown(operation))
    }
}

/// What an operation on a handle throws when its await ended because the
/// handle's loop shut down (which closed the handle).
func closedByItsLoopsShutdown(_ operation: String) -> WeftError {
    WeftError(.closed, operation: operation, detail: "its loop has shut down")
}

/// `awaitValue` from off the loop: runs the await on `loop` (else the shared
/// one) through a task executor preference; throws on `loop`'s orphaned-jobs
/// queue. Not inlined, so that the frame of every async read or write (which
/// stays allocated while it waits, in an idle connection's task too) holds
/// only what the await on the loop needs.
@inline(never) @usableFromInline
nonisolated(nonsending)
func awaitOffLoop<F: Future>(
    _ transfer: consuming UnsafeTransfer<F>, on loop: EventLoop?
) async throws(AwaitCancelled) -> UnsafeTransfer<F.Output> {
    // On the loop's orphaned-jobs queue nothing would poll the future: the
    // shutdown cancelled it (as `awaitOnLoop` says). Without a loop named
    // (a connect, a bind, a lookup), on any dead loop's queue: the task still
    // belongs to that loop, and must not carry on on the shared one.
    let isOrphaned = if let loop { loop.isRunningOrphanedJobs } else { EventLoop.isRunningOrphanedJob }
    if isOrphaned { throw AwaitCancelled(loopShutDown: true) }
    let executor: LoopTaskExecutor
    if let loop {
        executor = loop.executors.task
    } else {
        guard let shared = try? LoopThread.startShared() else { throw AwaitCancelled(.noSharedLoop) }
        executor = shared.taskExecutor
    }
    do {
        return try await withTaskExecutorPreference(executor) {
            try await awaitOnPreferredLoop(transfer)
        }
    } catch {
        throw error as! AwaitCancelled
    }
}

extension Future where Self: Sendable {
    /// This future's output, awaited from `async` code. See ``value(of:)``.
    @inlinable
    public var value: Output {
        get async throws(CancellationError) {
            try await UnsafeTransfer(value: Weft.value(of: self)).value
        }
    }
}

/// Hops to the task's preferred executor (a plain nonisolated async function
/// runs there), which is the loop, then awaits the future.
@inlinable
func awaitOnPreferredLoop<F: Future>(_ transfer: UnsafeTransfer<F>) async throws(AwaitCancelled) -> UnsafeTransfer<F.Output> {
    try await awaitOnLoop(transfer)
}

/// Runs on the caller's executor, which must be a loop thread: polls the future
/// inline, and while it is pending suspends until its waker fires, then polls
/// again. No task is spawned: the waker resumes this Swift task directly.
///
/// Cancelling the Swift task wakes it; it then drops the future (on the loop
/// thread, where it was polled) and throws ``AwaitCancelled``.
///
/// The waker is the task's own if ``LoopThread/spawn(_:)`` or an
/// ``AsyncFuture`` started it (see `TaskResumer`), else the loop's spare one,
/// borrowed for this await.
///
/// A task may resume elsewhere than on the loop that polled: a default actor
/// that ran on the loop's thread since its last Weft call (Swift's runtime
/// takes an actor on the thread where its task resumed) resumes on the actor's
/// own executor, and a task of a loop that shut down on its orphaned-jobs
/// queue. The future is then polled on its loop again, or dropped and the
/// await cancelled (``awaitElsewhere(_:loop:_:listedIn:)``), never polled there.
@inlinable @inline(__always)
nonisolated(nonsending)
func awaitOnLoop<F: Future>(_ transfer: consuming UnsafeTransfer<F>) async throws(AwaitCancelled) -> UnsafeTransfer<F.Output> {
    // No loop runs here only on a dead loop's orphaned-jobs queue (a task that
    // still prefers the loop, or an actor pinned to it, after its shutdown):
    // nothing would ever poll the future again, and the shutdown cancelled it.
    guard let runtime = weft_current_runtime() else { throw AwaitCancelled(loopShutDown: true) }
    var future = (consume transfer).value
    let resumer: ContinuationWaker
    /// For an await without the task's own waker, the loop's bridge state:
    /// where its suspensions are listed for the loop's shutdown, and the way
    /// back to the loop if the task resumes elsewhere. Nil for a task with its
    /// own waker, awaiting on the loop it was started on: ``LoopThread/spawn(_:)``
    /// made it prefer the loop, and its shutdown cancels it.
    let executors: LoopExecutors?
    if let own = TaskResumer.forCurrentTask(onLoop: runtime) {
        // A wake that reached it before this await's first poll was meant
        // for an earlier await.
        own.forgetWakes()
        resumer = own
        executors = nil
    } else {
        (resumer, executors) = ContinuationWaker.reusable()
    }
    let owned = executors == nil
    // Polled with the real waker from the first poll: a future that wakes
    // itself and returns pending (a yield) must see its task suspend.
    var context = Context(waker: Waker(resumer))
    while true {
        if case .ready(let output) = future.poll(&context) {
            _ = consume context
            if let executors { ContinuationWaker.recycle(consume resumer, into: executors) }
            return UnsafeTransfer(value: output)
        }
        // Cancelled before this call, the next turn throws: the task's own
        // waker was cancelled with the task, and a cancellation record added
        // to a cancelled task runs its handler at once.
        if resumer.wasCancelled {
            if !owned { resumer.finish() }
            throw AwaitCancelled(loopShutDown: false)
        }
        let loop = EventLoop.awaitWillSuspend(resumer, listedIn: executors)
        await resumer.suspendWakingOnCancel(addingRecord: !owned)
        if !EventLoop.awaitDidResume(onLoop: loop, resumer, listedIn: executors) {
            if !owned { resumer.finish() }
            return try await awaitElsewhere(UnsafeTransfer(value: future), loop: loop, resumer, listedIn: executors)
        }
    }
}

/// The rest of an await whose task resumed off the loop `loop` that polled
/// its future (see ``awaitOnLoop(_:)``): on that loop's orphaned-jobs queue,
/// the loop shut down, and the await is cancelled (the future dropped, as a
/// first poll there drops it); else (a default actor that another task held
/// when the wake came resumes the task on the actor's executor) the task goes
/// back to the loop through its task executor, which polls the future again
/// there (the wake that resumed the task made that poll due). A task with its
/// own waker (nil `executors`: the await is on the loop it was started on)
/// goes back the same way; it was taken for a shutdown, and the await threw
/// `CancellationError` in a task nobody cancelled. Rare, so apart.
@inline(never) @usableFromInline
nonisolated(nonsending)
func awaitElsewhere<F: Future>(
    _ transfer: consuming UnsafeTransfer<F>, loop: UInt64, _ resumer: ContinuationWaker, listedIn executors: LoopExecutors?
) async throws(AwaitCancelled) -> UnsafeTransfer<F.Output> {
    if EventLoop.isRunningOrphanedJob(ofLoop: loop) { throw AwaitCancelled(loopShutDown: true) }
    guard let target = executors ?? TaskResumer.executorsOfCurrentTask else { throw AwaitCancelled(loopShutDown: false) }
    do {
        return try await withTaskExecutorPreference(target.task) {
            try await resumeOnPreferredLoop(transfer, loop: loop, resumer, listedIn: target)
        }
    } catch {
        throw error as! AwaitCancelled
    }
}

/// Back on the loop (a plain `async` function runs on the task's preferred
/// executor): ends the suspension's bookkeeping there, then awaits the future.
func resumeOnPreferredLoop<F: Future>(
    _ transfer: UnsafeTransfer<F>, loop: UInt64, _ resumer: ContinuationWaker, listedIn executors: LoopExecutors
) async throws(AwaitCancelled) -> UnsafeTransfer<F.Output> {
    _ = EventLoop.awaitDidResume(onLoop: loop, resumer, listedIn: executors)
    return try await awaitOnLoop(transfer)
}

extension EventLoop {
    /// Counts an await about to suspend on the loop running this thread
    /// (``RuntimeStatistics/awaitsWaiting``), and lists its waker in
    /// `executors`, the loop's, if given (an await without its task's own
    /// waker: see ``LoopExecutors/suspended``); returns the loop's identity.
    @usableFromInline
    static func awaitWillSuspend(_ resumer: ContinuationWaker, listedIn executors: LoopExecutors?) -> UInt64 {
        executors?.list(resumer)
        return withCurrent { loop in
            loop!.counters.awaitsWaiting += 1
            return loop!.identity
        }
    }

    /// Undoes that, if it resumed on the loop it suspended on, and says
    /// whether it did: the identity, not a reference (which would cost a
    /// retain per suspension), since the loop may be gone. (Resumed
    /// elsewhere, it is undone once back on the loop, or the shutdown
    /// cleared the list.)
    @usableFromInline
    static func awaitDidResume(onLoop identity: UInt64, _ resumer: ContinuationWaker, listedIn executors: LoopExecutors?) -> Bool {
        withCurrent { loop in
            guard let loop, loop.identity == identity else { return false }
            loop.counters.awaitsWaiting -= 1
            executors?.unlist(resumer)
            return true
        }
    }
}

/// The waker of a future awaited from `async` code: it resumes the suspended
/// Swift task, or, when woken before the task suspends, makes the next
/// `suspendWakingOnCancel()` return at once, so no wake-up is lost.
///
/// Sendable because `continuation` is handed between threads by `state`: the
/// suspending side writes it before publishing `waiting` (release), and the
/// waking side reads it only after moving `state` from `waiting` (acquire).
@usableFromInline
final class ContinuationWaker: TaskCancellationObserver, FinishableWakeable, @unchecked Sendable {
    @usableFromInline static let idle: UInt8 = 0
    /// Woken while not suspended.
    @usableFromInline static let woken: UInt8 = 1
    /// Suspended: `continuation` is set.
    @usableFromInline static let waiting: UInt8 = 2
    /// Its await is over and it is not reused: a wake does nothing, and
    /// the waiting lists of handles drop it (see `WaitingWakers`).
    @usableFromInline static let finished: UInt8 = 3

    @usableFromInline let state = Atomic<UInt8>(ContinuationWaker.idle)
    @usableFromInline let cancelled = Atomic<Bool>(false)
    /// Its place in its loop's list of suspended awaits
    /// (``LoopExecutors/suspended``) while listed, else -1. Declared here, it
    /// fills the padding after the two flags: the object is no larger (each
    /// task `LoopThread.spawn` starts keeps one). Loop thread only.
    @exclusivity(unchecked) var listIndex: Int32 = -1
    @exclusivity(unchecked) @usableFromInline var continuation: UnsafeContinuation<Void, Never>?

    @usableFromInline override init() {}

    /// The spare waker of the loop running this thread if it has one, else a
    /// new one, and that loop's bridge state. Loop thread only.
    @usableFromInline
    static func reusable() -> (ContinuationWaker, LoopExecutors) {
        let executors = EventLoop.withCurrent { $0!.executors }
        return (executors.spare.take() ?? ContinuationWaker(), executors)
    }

    /// Leaves `resumer` for the next ``reusable()`` on the loop of
    /// `executors` if nothing else holds it (no future kept a copy of its
    /// waker), after an await that returned a value. Its task is not
    /// suspended then and its cancellation handler is removed, so no thread
    /// can reach it but this one.
    @usableFromInline
    static func recycle(_ resumer: consuming ContinuationWaker, into executors: LoopExecutors) {
        var resumer = resumer
        guard isKnownUniquelyReferenced(&resumer) else { return resumer.finish() }
        resumer.state.store(idle, ordering: .relaxed)
        resumer.cancelled.store(false, ordering: .relaxed)
        if executors.spare == nil { executors.spare = resumer }
    }

    /// Returns once the waker fired, or the task was cancelled (then
    /// ``wasCancelled`` is set). If it fired since the last return (the future
    /// woke itself, a yield), the task still goes to the back of its executor's
    /// queue first, as a Weft task would.
    ///
    /// With `addingRecord`, a cancellation of the task during the suspension
    /// reaches this waker through a runtime cancellation record added around
    /// it; without, the caller arranged that (a `TaskResumer`). Not
    /// `withTaskCancellationHandler { ... } onCancel: { ... }`: that function
    /// and its closure are not `nonisolated(nonsending)`, so they check the
    /// executor 5 times per call, and for a task with an executor preference
    /// each check takes the task's status lock (about a sixth of the async
    /// echo's CPU beyond the poll echo's). This adds the same runtime record
    /// around the suspension, with no executor checks.
    @inlinable @inline(__always)
    nonisolated(nonsending)
    func suspendWakingOnCancel(addingRecord: Bool) async {
        if state.compareExchange(expected: Self.woken, desired: Self.idle, ordering: .acquiring).exchanged {
            await Task.yield()
            // No record reached this waker during the yield: a future that
            // wakes itself each poll never suspended with one, and its task's
            // cancellation was never seen (the await spun for ever).
            if addingRecord && Task.isCancelled { cancelled.store(true, ordering: .releasing) }
            return
        }
        let record = addingRecord ? SwiftRuntime.addCancellationHandler(self) : nil
        await SwiftRuntime.withUnsafeContinuationOnCallersExecutor { (continuation: UnsafeContinuation<Void, Never>) in
            self.continuation = continuation
            if !state.compareExchange(expected: Self.idle, desired: Self.waiting, ordering: .acquiringAndReleasing).exchanged {
                // Woken in between (by the handler too, if the task was
                // already cancelled): resume ourselves.
                state.store(Self.idle, ordering: .relaxed)
                self.continuation = nil
                continuation.resume()
            }
        }
        SwiftRuntime.removeCancellationHandler(record)
    }

    /// Drops a wake that came while no await used this waker. Called on the
    /// awaiting thread before an await's first poll, so the wake was meant for
    /// an earlier await; a wake racing this one is such a wake too.
    ///
    /// An exchange that acquires, not a plain store: the wake it drops may be
    /// the cancellation handler's, and reading it is what makes the handler's
    /// `cancelled` visible to this await's check (a relaxed store could
    /// overwrite that wake with the check still reading false; the await then
    /// suspended with its cancellation spent).
    @inlinable
    func forgetWakes() {
        _ = state.exchange(Self.idle, ordering: .acquiring)
    }

    /// Marks its await over (see ``finished``). Called on the awaiting thread
    /// once the await no longer suspends; a wake racing it finds either state
    /// and does nothing that matters.
    @usableFromInline
    func finish() {
        state.store(Self.finished, ordering: .relaxed)
    }

    /// Whether its await is over: waking it can no longer matter.
    var isFinished: Bool { state.load(ordering: .relaxed) == Self.finished }

    /// Whether the task was cancelled while a ``suspendWakingOnCancel()`` ran.
    @inlinable
    var wasCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// The cancellation handler: wakes the task, which then sees ``wasCancelled``.
    ///
    /// A wake already pending makes ``wake()`` return without writing the
    /// state, and then nothing ordered this store before the await's read of
    /// ``wasCancelled``: it could read false and suspend again, the
    /// cancellation spent. Rewriting a pending wake (a read-modify-write that
    /// releases) publishes the store with it, to whoever takes that wake.
    override func taskWasCancelled() {
        cancelled.store(true, ordering: .releasing)
        if state.compareExchange(expected: Self.woken, desired: Self.woken, ordering: .releasing).exchanged { return }
        wake()
    }

    @usableFromInline
    func wake() {
        var current = state.load(ordering: .relaxed)
        while true {
            switch current {
            case Self.waiting:
                let (exchanged, original) = state.compareExchange(
                    expected: Self.waiting, desired: Self.idle, ordering: .acquiringAndReleasing)
                if exchanged {
                    let continuation = self.continuation.take()!
                    continuation.resume()
                    return
                }
                current = original
            case Self.idle:
                let (exchanged, original) = state.compareExchange(
                    expected: Self.idle, desired: Self.woken, ordering: .acquiringAndReleasing)
                if exchanged { return }
                current = original
            default:
                return  // already woken, or its await is over
            }
        }
    }
}
