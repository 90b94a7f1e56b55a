import CLibUV
import CWeftSupport
import Dispatch
import Synchronization

/// A Weft runtime on a thread of its own, for Swift `async`/`await` code.
///
/// Tasks started with ``spawn(_:)`` (or code inside ``run(_:)``) prefer the
/// loop's ``taskExecutor``, so they run on the loop thread: a continuation resumed
/// from a libuv callback resumes right there, without a hop to Swift's global
/// pool. Actors can pin themselves to the loop through ``serialExecutor``, and
/// ``LoopActor`` is a global actor for the shared loop.
///
/// <!-- snippet: prelude: echoServer -->
/// ```swift
/// let loop = try LoopThread()
/// let reply = try await loop.run {                  // this closure runs on the loop's thread
///     let stream = try await TCPStream.connect(to: address)
///     try await stream.write(Array("ping".utf8))
///     return try await stream.read()
/// }
/// loop.shutdown()
/// ```
///
/// ``shutdown()`` cancels the tasks started with ``spawn(_:)``, gives them a
/// second to finish, cancels every Weft task, closes the handles the loop
/// owns (its timers, signal handlers, file watches; its children are killed or
/// left to the reaper, as their ``Command/killOnDrop`` says) and joins the
/// thread. A loop thread whose last reference goes without a shutdown stops
/// the same way once the tasks ``spawn(_:)`` started have finished (they keep
/// it running, as a `Runtime`'s do not), without waiting for its thread; a
/// task that only prefers its ``taskExecutor`` does not keep it. A stream, listener, socket or file still held outside its tasks
/// stays open until it is closed or dropped; its operations then fail with
/// ``WeftError/Kind-swift.enum/closed`` or ``WeftError/Kind-swift.enum/shutDown``. Swift jobs that still arrive afterwards run one at a time on a serial
/// dispatch queue, so actors pinned to the loop keep their mutual exclusion.
public final class LoopThread: Sendable {
    /// The loop shared by ``LoopActor`` and by `value(of:)` called off any loop.
    /// Started on first use; never shut down: do not call its ``shutdown()``,
    /// after which every `value(of:)` made off a loop throws
    /// `CancellationError` for the rest of the process.
    ///
    /// Traps if it cannot start (the process is out of descriptors or
    /// threads). Weft's own async operations that can fail, called off any
    /// loop, throw that error instead, and the next one tries again. (Not
    /// where it would be the process's first loop of all: libuv sets up its
    /// signal handling then, and aborts when that finds no descriptor.)
    public static var shared: LoopThread {
        do { return try startShared() } catch { sharedLoopCannotStart() }
    }

    /// The shared loop once started: read without a lock by every await made
    /// off any loop.
    private static let sharedLoop = AtomicLazyReference<LoopThread>()
    /// Held while the shared loop starts; the error of the last start that
    /// failed.
    private static let sharedLoopStart = Mutex<WeftError?>(nil)

    /// The shared loop, started now if it has not been: a start that fails
    /// throws (libuv's error, or a thread that could not be made), and the
    /// next call tries again.
    static func startShared() throws(WeftError) -> LoopThread {
        if let loop = sharedLoop.load() { return loop }
        return try sharedLoopStart.withLock { lastFailure throws(WeftError) -> LoopThread in
            if let loop = sharedLoop.load() { return loop }
            do throws(WeftError) {
                // The last failure stays: a caller whose start failed reads it
                // after letting go of the lock, maybe after another's succeeded.
                let loop = try LoopThread(name: "weft-shared")
                return sharedLoop.storeIfNil(loop)
            } catch {
                lastFailure = error
                throw error
            }
        }
    }

    /// What an operation made off any loop throws when the shared loop could
    /// not start: its error, named as `operation`.
    static func sharedLoopFailure(in operation: String) -> WeftError {
        let failure = sharedLoopStart.withLock { $0 }
        return WeftError(failure?.kind ?? .shutDown, operation: operation,
                         detail: "the shared loop, which runs it off any loop, could not start: \(describe(failure))")
    }

    /// The trap of a call off any loop that cannot throw why the shared loop
    /// could not start.
    @usableFromInline
    static func sharedLoopCannotStart() -> Never {
        fatalError("cannot start the shared Weft loop: \(describe(sharedLoopStart.withLock { $0 }))")
    }

    /// The last failure to start the shared loop, for a message.
    private static func describe(_ failure: WeftError?) -> String {
        failure.map { "\($0)" } ?? "unknown"
    }

    private struct State {
        var thread: pthread_t?
        var stopWaker: Waker?
        var nextTaskID = 0
        /// Cancellation of the tasks started with `spawn`, until they finish.
        var running: [Int: @Sendable () -> Void] = [:]
        /// Tasks that finished before their spawner recorded them (a task
        /// spawned from another thread can run to its end on the loop before
        /// `spawn` returns): `started` then records nothing.
        var finishedBeforeStarted: Set<Int> = []
        var runningWaker: Waker?
        /// Set when the last reference to the loop thread went: the loop
        /// stops once no spawned task runs.
        var isReleased = false
        /// The loop's count of running Swift tasks, for its reports.
        var swiftTasks: SwiftTaskCount?
    }

    /// Shared with the loop thread.
    private final class Control: Sendable {
        let state = Mutex(State())
        /// Entered before the thread starts, left when its body returns: what
        /// every ``join()`` but the one that calls `pthread_join` waits for.
        let threadEnded = DispatchGroup()
        /// Whether the loop was asked to stop. Atomic, so that ``isStopping``
        /// (read on every connection `serve` hands to another loop) takes no
        /// lock; set before `requestStop` takes `stopWaker` under the lock,
        /// and read under it where a check must not race that (the loop's
        /// stop, `started`).
        let stopRequested = Atomic<Bool>(false)

        /// Asks the loop to wind down, without waiting.
        func requestStop() {
            stopRequested.store(true, ordering: .releasing)
            let waker = state.locked { $0.stopWaker.take() }
            waker?.wake()
        }

        /// A number for a task about to be spawned.
        func nextTaskID() -> Int {
            state.locked { state -> Int in
                state.nextTaskID += 1
                state.swiftTasks?.alive.add(1, ordering: .relaxed)
                return state.nextTaskID
            }
        }

        /// Records how to cancel spawned task `id` at shutdown, unless it
        /// already finished; cancels it now if the loop is stopping.
        func started<T, Failure>(_ id: Int, _ task: Task<T, Failure>) {
            let stopping = state.locked { state -> Bool in
                if state.finishedBeforeStarted.remove(id) == nil {
                    state.running[id] = { task.cancel() }
                } else {
                    state.finishedBeforeStarted.shrinkIfSparse()
                }
                return stopRequested.load(ordering: .acquiring)
            }
            if stopping { task.cancel() }
        }

        /// Spawned task `id` ended: forgets it, and wakes the shutdown's wait
        /// if it was the last.
        func finished(_ id: Int) {
            let (waker, stops) = state.locked { state -> (Waker?, Bool) in
                if state.running.removeValue(forKey: id) == nil {
                    state.finishedBeforeStarted.insert(id)
                } else {
                    state.running.shrinkIfSparse()  // a burst of tasks gone
                }
                state.swiftTasks?.alive.add(-1, ordering: .relaxed)
                guard state.running.isEmpty else { return (nil, false) }
                return (state.runningWaker.take(), state.isReleased)
            }
            waker?.wake()
            if stops { requestStop() }  // the last task of a loop nobody holds
        }
    }

    private let control = Control()
    private let executors: LoopExecutors

    /// The loop's serial executor (for actors pinned to the loop).
    public var serialExecutor: LoopSerialExecutor { executors.serial }
    /// The loop's task executor (for tasks that run on the loop).
    public var taskExecutor: LoopTaskExecutor { executors.task }

    /// Starts a thread running a new runtime, named `name` (as `top -H`,
    /// `perf` and debuggers show it; Linux keeps its first 15 bytes). With
    /// `cpu`, the thread is pinned to that CPU (see ``LoopGroup/allowedCPUs``),
    /// it alone: the threads, loops and child processes it starts run on every
    /// CPU the process may use; pinning fails with `.invalidArgument` for a
    /// CPU the process may not use.
    /// `options` configure its runtime (e.g. the connection buffer budget);
    /// a loop thread runs in real time, so a deterministic seed is refused
    /// with `.invalidArgument`.
    public init(name: String = "weft-loop", cpu: Int? = nil, options: RuntimeOptions = RuntimeOptions()) throws(WeftError) {
        guard options.deterministicSeed == nil else {
            throw WeftError(.invalidArgument, operation: "LoopThread(name: \"\(name)\")",
                            detail: "a loop thread runs in real time; the deterministic mode is for Runtime.block(on:)")
        }
        // libuv's pool, shared by every loop, is started on the process's
        // CPUs before any loop is pinned: its threads inherit the CPUs of the
        // thread that uses it first, which could be a pinned loop.
        if cpu != nil { weft_start_thread_pool() }
        let started = DispatchSemaphore(value: 0)
        let handoff = Mutex<Result<(LoopExecutors, SwiftTaskCount), WeftError>?>(nil)
        let thread: pthread_t
        control.threadEnded.enter()
        do throws(ThreadStartError) {
            thread = try startThread { [control] in
                defer { control.threadEnded.leave() }
                // Else the thread keeps its creator's name (a Dispatch worker's).
                weft_set_thread_name(name)
                if let cpu {
                    let failed = weft_pin_current_thread(Int32(clamping: cpu))
                    if failed != 0 {
                        handoff.locked {
                            $0 = .failure(WeftError(.invalidArgument, operation: "LoopThread(name: \"\(name)\", cpu: \(cpu))",
                                                    detail: "pthread_setaffinity_np failed: \(String(cString: strerror(failed)))"))
                        }
                        started.signal()
                        return
                    }
                }
                let runtime: Runtime
                do throws(WeftError) {
                    runtime = try Runtime(options: options)
                } catch {
                    handoff.locked { $0 = .failure(error) }
                    started.signal()
                    return
                }
                runtime.loop.servesForeignWork = true
                handoff.locked { $0 = .success((runtime.loop.executors, runtime.loop.swiftTasks)) }
                started.signal()
                LoopThread.serve(runtime, control: control)
            }
        } catch {
            control.threadEnded.leave()
            throw error.weftError(operation: "LoopThread(name: \"\(name)\")")
        }
        started.wait()
        switch handoff.locked({ $0! }) {
        case .failure(let error):
            pthread_join(thread, nil)
            throw error
        case .success(let (executors, swiftTasks)):
            self.executors = executors
            control.state.locked {
                $0.thread = thread
                $0.swiftTasks = swiftTasks
            }
        }
    }

    /// Runs on the loop thread: serve until asked to stop, then wind down.
    private static func serve(_ runtime: Runtime, control: Control) {
        let stop = pollFn { (context: inout Context) -> Poll<Void> in
            control.state.locked { state -> Poll<Void> in
                if control.stopRequested.load(ordering: .acquiring) { return .ready(()) }
                state.stopWaker = context.waker
                return .pending
            }
        }
        _ = try? runtime.block(on: stop)
        // Cancel the spawned Swift tasks and give them a second to finish.
        let cancels = control.state.locked { Array($0.running.values) }
        for cancel in cancels { cancel() }
        let drained = pollFn { (context: inout Context) -> Poll<Void> in
            control.state.locked { state -> Poll<Void> in
                if state.running.isEmpty { return .ready(()) }
                state.runningWaker = context.waker
                return .pending
            }
        }
        _ = try? runtime.block(on: timeoutFuture(.seconds(1), drained))
        try? runtime.shutdown()
    }

    /// Starts `operation` as a Swift task that runs on this loop.
    @discardableResult
    public func spawn<T: Sendable>(
        _ operation: sending @escaping @isolated(any) () async throws -> T
    ) -> Task<T, Error> {
        let id = control.nextTaskID()
        let task = Task(executorPreference: taskExecutor) { [control] in
            try await Self.runSpawned(operation, id: id, control: control)
        }
        control.started(id, task)
        return task
    }

    /// ``spawn(_:)`` for a task detached from the calling one: it takes none
    /// of its task-local values (nor its priority). The tasks `serve` starts
    /// for its listeners, so that no connection's handler sees those of
    /// `serve`'s caller.
    @discardableResult
    func spawnDetached<T: Sendable>(_ operation: sending @escaping () async throws -> T) -> Task<T, Error> {
        let id = control.nextTaskID()
        let task = Task.detached(executorPreference: taskExecutor) { [control] in
            try await Self.runSpawned(operation, id: id, control: control)
        }
        control.started(id, task)
        return task
    }

    /// The body of a task ``spawn(_:)`` or ``spawnDetached(_:)`` started:
    /// `operation`, with the task's own waker (``TaskResumer``), then the
    /// task's end recorded for the shutdown.
    private static func runSpawned<T: Sendable>(
        _ operation: @isolated(any) () async throws -> T, id: Int, control: Control
    ) async throws -> T {
        defer { control.finished(id) }
        let own = TaskResumer.begin()
        defer { own.end() }
        return try await operation()
    }

    /// Starts a task of `workers` on this loop for the connection `first`: it
    /// runs their handler for each connection it is given until
    /// `workers.next(for:)` has none. The loop is the task's own closure, the
    /// handler called straight from it, and the closure keeps only the
    /// mailbox (which knows the workers and the task's number) and `control`
    /// across the loop: a closure or function wrapping the loop, or one more
    /// value kept (the closure's frame 96 -> 128 bytes), pushes an idle
    /// connection's task into a second 1 KiB stack slab (docs/BENCHMARKS-HISTORY.md,
    /// "Eighth session … many loops" and "Nineteenth session"). The closure is
    /// declared throwing, though it throws nothing: a non-throwing one is
    /// called through two reabstraction thunks, 96 bytes of that stack for the
    /// task's whole life (docs/BENCHMARKS.md, "Idle connections: what each
    /// one holds"). Detached: the task is started in a listener's readiness
    /// callback, or in the listener's task as it hands on the connections
    /// accepted before it ran, and a handler sees no task-local values of
    /// either (nor, through that task, of `serve`'s caller).
    func spawn(worker workers: ConnectionWorkers, first: ConnectionWorkers.Delivery) {
        let mailbox = ConnectionWorkers.Mailbox(first, workers: workers, taskID: control.nextTaskID())
        let task = Task<Void, any Error>.detached(executorPreference: taskExecutor) { [control] () async throws in
            let own = TaskResumer.begin()
            // Each connection is released at the end of its turn, before the wait for the next.
            while let connection = await mailbox.workers.next(for: mailbox) {
                await mailbox.workers.serve(connection)
            }
            own.end()
            control.finished(mailbox.taskID)
        }
        control.started(mailbox.taskID, task)
    }

    /// Runs `operation` on this loop (as part of the calling task) and returns
    /// its result.
    ///
    /// From main-actor code (top-level code included) pass a `@Sendable`
    /// closure: one that is not `Sendable` inherits the main actor's isolation
    /// and runs there, not on this loop, so the loop-bound calls in it fail
    /// with `.wrongThread`.
    public func run<T, Failure: Error>(
        _ operation: () async throws(Failure) -> T
    ) async throws(Failure) -> T {
        try await withTaskExecutorPreference(taskExecutor, operation: operation)
    }

    /// Stops the loop: cancels spawned tasks (waiting up to a second for them),
    /// cancels every Weft task, closes the handles the loop owns (see
    /// ``LoopThread``: not a stream or listener still held outside its tasks)
    /// and joins the thread.
    /// Idempotent: a later call, or one at the same time, returns too once
    /// the thread has ended.
    ///
    /// Called on the loop's own thread (from a task on it), which cannot wait
    /// for itself: it asks the loop to stop, which it does once the calling
    /// job returns, and a thread of its own joins it; the call returns at once.
    /// So it does on any thread that runs a runtime (another loop's, a
    /// `block(on:)`), which must not stop serving for up to the grace second
    /// (two loops shutting each other down so waited for each other for ever).
    public func shutdown() {
        LoopThread.shutDown([self])
    }

    /// ``shutdown()`` for async code: the same steps, but the caller's thread
    /// is not blocked while the loop winds down (the caller sleeps a
    /// millisecond at a time until it has ended), so a task on Swift's cooperative pool
    /// (two threads on a two-core machine) does not hold one of them for up
    /// to a second. Called from a task on this loop, it returns once the loop
    /// is asked to stop, as ``shutdown()`` does.
    public func shutdownGracefully() async {
        await LoopThread.shutDownWithoutBlocking([self])
    }

    /// Asks every loop of `loops` to stop, so that they wind down in
    /// parallel, then joins them; from a loop's thread (theirs or another's),
    /// joins them on a new thread and returns (see ``shutdown()``).
    static func shutDown(_ loops: [LoopThread]) {
        for loop in loops { loop.requestStop() }
        guard weft_current_runtime() != nil || loops.contains(where: \.isCurrent) else {
            for loop in loops { loop.join() }
            return
        }
        // If no thread can be made, the loops still stop; nothing joins them.
        if let joiner = try? startThread({ for loop in loops { loop.join() } }) {
            pthread_detach(joiner)  // nothing joins the joiner
        }
    }

    /// ``shutDown(_:)`` without blocking the calling thread: the caller
    /// checks every millisecond whether the loops have ended, then joins them
    /// (at once by then). From one of the loops' own threads it returns once
    /// they are asked to stop, as ``shutDown(_:)`` does.
    ///
    /// Not a joiner thread that resumes the caller: a resume from a thread
    /// Swift's runtime does not know, made while the task is still
    /// suspending, is a hand-over the runtime announces to ThreadSanitizer
    /// only after the task may have run on, which reported it as a race
    /// (loops that ended within microseconds, as two loops that stop each
    /// other do). A cancelled caller, whose sleeps end at once, still joins
    /// them on such a thread.
    static func shutDownWithoutBlocking(_ loops: [LoopThread]) async {
        guard !loops.contains(where: \.isCurrent) else { return shutDown(loops) }
        for loop in loops { loop.requestStop() }
        do {
            while !loops.allSatisfy(\.hasEnded) { try await Task.sleep(for: .milliseconds(1)) }
            for loop in loops { loop.join() }
        } catch {
            await joinOnAThreadOfItsOwn(loops)
        }
    }

    /// Joins `loops` on a thread of its own, which resumes the caller once
    /// they have ended (on this one if no thread can be made).
    private static func joinOnAThreadOfItsOwn(_ loops: [LoopThread]) async {
        await withUnsafeContinuation { (done: UnsafeContinuation<Void, Never>) in
            do {
                let joiner = try startThread {
                    for loop in loops { loop.join() }
                    done.resume()
                }
                pthread_detach(joiner)  // the continuation tells the caller
            } catch {
                for loop in loops { loop.join() }
                done.resume()
            }
        }
    }

    /// The first half of ``shutdown()``: asks the loop to wind down, without
    /// waiting.
    private func requestStop() {
        control.requestStop()
    }

    /// Nobody can spawn on the loop, stop it or join its thread any more: it
    /// stops once the tasks ``spawn(_:)`` started have finished (at once if
    /// none runs), as ``shutdown()`` stops it, and its thread, detached, ends
    /// by itself. (It ran for the process's life, with its thread, its loop
    /// and their descriptors, out of anyone's reach.)
    deinit {
        let (thread, idle) = control.state.locked { state in
            state.isReleased = true
            return (state.thread.take(), state.running.isEmpty)
        }
        if idle { control.requestStop() }
        if let thread { pthread_detach(thread) }
    }

    /// The second half of ``shutdown()``: waits for the thread to end. The
    /// first caller joins it; every later one (a second shutdown, from
    /// outside after one from the loop's own thread, or at the same time)
    /// waits until the thread's body has returned, so none returns while the
    /// loop still winds down. Never called on the loop's own thread.
    private func join() {
        let thread = control.state.locked { state -> pthread_t? in
            defer { state.thread = nil }
            return state.thread
        }
        if let thread { pthread_join(thread, nil) } else { control.threadEnded.wait() }
    }

    /// Whether the loop's thread has finished its work (it may not be joined yet).
    private var hasEnded: Bool { control.threadEnded.wait(timeout: .now()) == .success }

    /// Whether the loop was asked to stop (``shutdown()``).
    var isStopping: Bool { control.stopRequested.load(ordering: .acquiring) }

    /// The slots of its record of spawned tasks, for tests.
    var spawnRecordCapacity: (running: Int, finishedBeforeStarted: Int) {
        control.state.locked { ($0.running.capacity, $0.finishedBeforeStarted.capacity) }
    }

    /// Whether the calling thread is this loop's (while it runs).
    var isCurrent: Bool { executors.task.target.isOnLoopThread }
}

/// A global actor whose code runs on ``LoopThread/shared``.
///
/// <!-- snippet: declarations -->
/// ```swift
/// @LoopActor func greet(_ stream: TCPStream) async throws {   // runs on the shared loop
///     try await stream.write(Array("hello\n".utf8))
/// }
/// ```
@globalActor
public actor LoopActor {
    /// The actor instance (its executor is the shared loop's).
    public static let shared = LoopActor()

    /// ``LoopThread/shared``'s serial executor, looked up once: the shared
    /// loop is never released.
    private nonisolated let executor: UnownedSerialExecutor

    private init() {
        executor = LoopThread.shared.serialExecutor.asUnownedSerialExecutor()
    }

    /// ``LoopThread/shared``'s serial executor.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor }
}

extension ThreadStartError {
    /// The failure as a libuv error of `operation` (a libuv code is the
    /// negated errno): `EAGAIN` when the process or the system is out of
    /// threads, or of memory for a stack.
    func weftError(operation: String) -> WeftError {
        WeftError(.libuv(code: -code), operation: operation, detail: "pthread_create failed")
    }
}
