// continuation-floor: what Swift's concurrency runtime costs per await that
// suspends and is resumed, on one thread, with nothing of Weft in it.
//
// A thread runs a minimal task executor: a queue of jobs, drained in turn.
// One Swift task, started with that executor as its preference (as Weft
// starts connection tasks), awaits an `UnsafeContinuation` N times; whenever
// the queue is empty the thread resumes the stored continuation, as Weft's
// loop does when a read completes. This is Weft's async path stripped to the
// runtime: the continuation, the resume's enqueue, the job run and the hop
// back after the await.
//
// The baseline does the same hand-off without a Swift task: the queue holds a
// poll-based task object that the idle step wakes by queueing it again (what
// a Weft task's wake and re-poll cost, less the future).
//
// A third mode waits without a continuation: the task hops onto an actor whose
// serial executor parks the job it is given until the idle step runs it (two
// such actors in turn, so that every hop is a switch). It shows what waiting
// by executor hop would cost instead of by continuation.
//
// Build and run (optimized, pinned), from the repository root:
//   make -C Benchmarks/swift-floor
//   taskset -c 0 Benchmarks/swift-floor/continuation-floor [-n 2000000]
// A fourth mode, `swift-actor`, isolates the task to an actor whose serial
// executor is the thread's queue (no executor preference) and awaits
// `withUnsafeContinuation(isolation:)` in an actor method: whether a
// continuation resumed on the actor's own thread comes back to the actor
// directly. It does not: every resume goes to Swift's global executor, which
// hops back (`foreign_jobs` counts the jobs enqueued from another thread).
//
// One line per mode: `mode=NAME n=N ns_per_cycle=X`, and for the Swift modes
// `jobs_per_cycle=J`: the jobs run per wait.

import Foundation

/// A task executor that only queues jobs; `drain(idle:)` runs them on the
/// calling thread. Confined to that thread: jobs are enqueued only by the
/// thread itself (the task's resumes and hops happen while it drains), so the
/// unsynchronized queue is never touched by two threads.
final class InlineExecutor: TaskExecutor, @unchecked Sendable {
    var jobs: [UnownedJob] = []
    var spare: [UnownedJob] = []
    /// Jobs run on this thread so far: its own, and those a
    /// ``ParkingExecutor`` kept.
    var ran = 0

    func enqueue(_ job: consuming ExecutorJob) {
        jobs.append(UnownedJob(job))
    }

    /// Runs jobs until none is queued, then calls `idle`; stops when `idle`
    /// returns false.
    func drain(idle: () -> Bool) {
        while true {
            while !jobs.isEmpty {
                swap(&jobs, &spare)
                ran += spare.count
                for job in spare { job.runSynchronously(on: asUnownedTaskExecutor()) }
                spare.removeAll(keepingCapacity: true)
            }
            if !idle() { return }
        }
    }
}

/// The continuation the task waits on, set and taken on the executor's thread.
final class Waiting: @unchecked Sendable {
    var continuation: UnsafeContinuation<Void, Never>?
    var done = false
}

func clockNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// What a mode measured: nanoseconds per wait, and for a Swift task the jobs
/// its executor ran per wait.
struct Measured {
    var nanoseconds: Double
    var jobs: Double?
}

/// A Swift task with the executor as its preference awaits `n` continuations.
func swiftTask(n: Int) -> Measured {
    let executor = InlineExecutor()
    let waiting = Waiting()
    let start = clockNanoseconds()
    Task(executorPreference: executor) {
        for _ in 0..<n {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                waiting.continuation = continuation
            }
        }
        waiting.done = true
    }
    // The task's first job was enqueued on the executor by `Task(...)`.
    executor.drain {
        if waiting.done { return false }
        guard let continuation = waiting.continuation else { fatalError("the task neither waits nor finished") }
        waiting.continuation = nil
        continuation.resume()
        return true
    }
    return Measured(nanoseconds: Double(clockNanoseconds() - start) / Double(n), jobs: Double(executor.ran) / Double(n))
}

/// A serial executor that keeps the one job enqueued on it until `runParked`
/// runs it on the calling thread (with `taskExecutor` as the task executor, as
/// the loop would). Confined to that thread, as ``InlineExecutor`` is.
final class ParkingExecutor: SerialExecutor, @unchecked Sendable {
    var parked: UnownedJob?

    func enqueue(_ job: consuming ExecutorJob) {
        precondition(parked == nil, "two jobs parked")
        parked = UnownedJob(job)
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    /// Runs the parked job; false when there is none.
    func runParked(taskExecutor: InlineExecutor) -> Bool {
        guard let job = parked else { return false }
        parked = nil
        taskExecutor.ran += 1
        job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: taskExecutor.asUnownedTaskExecutor())
        return true
    }
}

/// An actor on a parking executor: calling `pass()` from elsewhere suspends
/// the caller until the executor's job is run.
actor Gate {
    let executor: ParkingExecutor
    /// Touched so that the hop onto the actor is not optimized away.
    var passes = 0

    init(_ executor: ParkingExecutor) { self.executor = executor }

    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    func pass() { passes += 1 }
}

/// A Swift task with the executor as its preference waits `n` times by
/// hopping onto one of two gates in turn; the idle step runs the parked job.
func swiftHop(n: Int) -> Measured {
    let executor = InlineExecutor()
    let gates = [Gate(ParkingExecutor()), Gate(ParkingExecutor())]
    let waiting = Waiting()
    let start = clockNanoseconds()
    Task(executorPreference: executor) {
        for index in 0..<n {
            await gates[index & 1].pass()
        }
        waiting.done = true
    }
    executor.drain {
        if waiting.done { return false }
        guard gates.contains(where: { $0.executor.runParked(taskExecutor: executor) }) else {
            fatalError("the task neither waits nor finished")
        }
        return true
    }
    return Measured(nanoseconds: Double(clockNanoseconds() - start) / Double(n), jobs: Double(executor.ran) / Double(n))
}

/// A serial executor that queues its jobs on `inline`'s queue when enqueued
/// from the draining thread, and in `foreign` (under a lock) from any other:
/// the jobs Swift's global executor hands back.
final class QueueSerialExecutor: SerialExecutor, @unchecked Sendable {
    let inline: InlineExecutor
    let owner = pthread_self()
    let lock = NSLock()
    var foreign: [UnownedJob] = []
    var foreignCount = 0

    init(_ inline: InlineExecutor) { self.inline = inline }

    func enqueue(_ job: consuming ExecutorJob) {
        if pthread_equal(pthread_self(), owner) != 0 {
            inline.jobs.append(UnownedJob(job))
            return
        }
        lock.lock()
        foreign.append(UnownedJob(job))
        foreignCount += 1
        lock.unlock()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    /// Moves the jobs enqueued from other threads to the queue; false if none.
    func takeForeign() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if foreign.isEmpty { return false }
        inline.jobs.append(contentsOf: foreign)
        foreign.removeAll()
        return true
    }
}

/// An actor on the thread's queue whose method awaits `n` continuations.
actor QueueActor {
    let executor: QueueSerialExecutor

    init(_ executor: QueueSerialExecutor) { self.executor = executor }

    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    func wait(n: Int, on waiting: Waiting) async {
        for _ in 0..<n {
            await withUnsafeContinuation(isolation: self) { (continuation: UnsafeContinuation<Void, Never>) in
                waiting.continuation = continuation
            }
        }
        waiting.done = true
    }
}

/// A task isolated to an actor on the thread's queue waits `n` times; the
/// idle step resumes it, or takes in the jobs handed back from elsewhere.
func swiftActor(n: Int) -> Measured {
    let executor = InlineExecutor()
    let serial = QueueSerialExecutor(executor)
    let actor = QueueActor(serial)
    let waiting = Waiting()
    Task { await actor.wait(n: n, on: waiting) }
    while !serial.takeForeign() { usleep(100) }  // the task's hop onto the actor
    let ran = executor.ran
    let start = clockNanoseconds()
    executor.drain {
        if waiting.done { return false }
        if serial.takeForeign() { return true }
        guard let continuation = waiting.continuation else { return true }  // still on its way back
        waiting.continuation = nil
        continuation.resume()
        return true
    }
    let elapsed = clockNanoseconds() - start
    print("mode=swift-actor foreign_jobs=\(serial.foreignCount - 1)")
    return Measured(nanoseconds: Double(elapsed) / Double(n), jobs: Double(executor.ran - ran) / Double(n))
}

/// A poll-based task, as a Weft task is to its loop: `poll()` does one step
/// and says whether it is finished; otherwise it waits to be woken.
final class PollTask {
    var remaining: Int
    init(steps: Int) { remaining = steps }
    @inline(never) func poll() -> Bool {
        remaining -= 1
        return remaining == 0
    }
}

/// The same hand-off without a Swift task: the thread's queue holds a
/// poll-based task; polled, it waits again, and the idle step wakes it by
/// queueing it (a Weft task's wake and re-poll, less the future).
func pollTask(n: Int) -> Measured {
    let task = PollTask(steps: n)
    var ready: [PollTask] = [task]
    var spare: [PollTask] = []
    var waiting: PollTask?
    let start = clockNanoseconds()
    while true {
        while !ready.isEmpty {
            swap(&ready, &spare)
            for task in spare where !task.poll() { waiting = task }
            spare.removeAll(keepingCapacity: true)
        }
        guard let woken = waiting else { break }
        waiting = nil
        ready.append(woken)
    }
    return Measured(nanoseconds: Double(clockNanoseconds() - start) / Double(n))
}

@main
struct ContinuationFloor {
    static func main() {
        let arguments = CommandLine.arguments
        var n = 2_000_000
        if let index = arguments.firstIndex(of: "-n"), index + 1 < arguments.count, let value = Int(arguments[index + 1]) {
            n = value
        }
        let modes: [(String, (Int) -> Measured)] = [("poll-task", pollTask), ("swift-task", swiftTask), ("swift-hop", swiftHop), ("swift-actor", swiftActor)]
        for (mode, measure) in modes where !arguments.contains("--task-only") || mode == "swift-task" {
            let measured = measure(n)
            var line = "mode=\(mode) n=\(n) ns_per_cycle=\(String(format: "%.1f", measured.nanoseconds))"
            if let jobs = measured.jobs { line += " jobs_per_cycle=\(String(format: "%.2f", jobs))" }
            print(line)
        }
    }
}
