import CWeftSupport
import Synchronization

/// Several loops, one per core, each a ``LoopThread`` of its own: the
/// thread-per-core way to use every core (docs/ARCHITECTURE.md, "Many loops").
///
/// A task is *placed* on one loop and stays there: every handle it opens
/// belongs to that loop, and nothing is stolen by another. What crosses loops
/// goes through a waker or a channel; the async TCP methods called from a task
/// on another loop hop to the handle's loop and back.
///
/// ```swift
/// let group = try LoopGroup()                       // one loop per allowed CPU
/// let server = try await group.serve(SocketAddress("127.0.0.1:0")) { connection in
///     try await connection.write(Array("hello\n".utf8))   // runs on the loop that accepted it
///     connection.close()
/// }
/// print(server.localAddress)                        // the port the OS picked
/// await server.close()                              // stop accepting on every loop
/// group.shutdown()
/// ```
///
/// **Placement.** ``spawn(_:)`` and ``next()`` go round-robin: a counter, no
/// look at the other loops' queues. Least-loaded placement would read every
/// loop's counters (cache lines other cores write) on each spawn and still
/// guess wrong for tasks whose work comes later; connections, the usual
/// spawned work, are already spread by the kernel (``serve(_:distribution:backlog:handler:)``).
///
/// **As a `TaskExecutor`.** A task created with the group as its preference
/// (`Task(executorPreference: group)`, `withTaskExecutorPreference(group)`)
/// is placed on a loop by a hash of its identity, so every job of it (the
/// first and each resumption) runs on that same loop. Actors pin themselves
/// to one loop through that loop's ``LoopThread/serialExecutor``.
///
/// **Shutdown.** ``shutdown()`` asks every loop to stop at once, so they wind
/// down in parallel (each cancels its spawned tasks, gives them a second,
/// cancels its Weft tasks and closes the handles it owns, as
/// ``LoopThread/shutdown()`` does), then joins every thread. A group dropped
/// without it lets go of its loops, each of which then stops once its
/// spawned tasks (a server's among them) have finished.
///
/// Keep the group alive while tasks prefer it, as with any executor.
public final class LoopGroup: TaskExecutor {
    /// The loops, in the order ``next()`` takes them.
    public let loops: [LoopThread]
    private let targets: [JobTarget]
    private let nextIndex = Atomic<Int>(0)

    /// The CPUs this process may run on (its main thread's
    /// `sched_getaffinity`, not a pinned loop's), lowest first; their count is
    /// the default size of a group. Threads and children started from a
    /// pinned loop run on these, not on its one CPU.
    public static var allowedCPUs: [Int] {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = Int(weft_allowed_cpus(&cpus, Int32(cpus.count)))
        guard count > 0 else { return [0] }
        return cpus.prefix(min(count, cpus.count)).map(Int.init)
    }

    /// Starts `count` loops (default: one per CPU in ``allowedCPUs``), named
    /// `name-0`, `name-1`, …. With `pinned`, loop *i* runs only on the *i*-th
    /// allowed CPU (wrapping around when there are more loops than CPUs).
    /// Every loop's runtime gets `options` (see ``LoopThread/init(name:cpu:options:)``).
    ///
    /// Fails with `.invalidArgument` for a count below 1, or with the error of
    /// the loop that could not start (the ones already started are shut down).
    public init(
        loops count: Int? = nil, name: String = "weft-loop", pinned: Bool = false, options: RuntimeOptions = RuntimeOptions()
    ) throws(WeftError) {
        let cpus = Self.allowedCPUs
        let count = count ?? cpus.count
        guard count >= 1 else {
            throw WeftError(.invalidArgument, operation: "LoopGroup(loops: \(count))", detail: "a group needs at least one loop")
        }
        var loops: [LoopThread] = []
        do throws(WeftError) {
            for index in 0..<count {
                loops.append(try LoopThread(name: "\(name)-\(index)", cpu: pinned ? cpus[index % cpus.count] : nil, options: options))
            }
        } catch {
            LoopThread.shutDown(loops)
            throw error
        }
        self.loops = loops
        targets = loops.map { $0.taskExecutor.target }
    }

    /// The loop the next piece of work should go to (round-robin).
    public func next() -> LoopThread {
        loops[nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// Starts `operation` as a Swift task on the next loop (``next()``); it
    /// stays on that loop. See ``LoopThread/spawn(_:)``.
    @discardableResult
    public func spawn<T: Sendable>(
        _ operation: sending @escaping @isolated(any) () async throws -> T
    ) -> Task<T, Error> {
        next().spawn(operation)
    }

    /// Stops every loop, in parallel, and joins their threads. Idempotent.
    ///
    /// Called on a thread that runs a runtime (a task on one of the group's
    /// loops, which cannot wait for its own loop to end, or on another loop,
    /// or in a `block(on:)`, which must not stop serving): it asks every loop
    /// to stop (the caller's once the calling job returns), a thread of its
    /// own joins them, and the call returns at once.
    public func shutdown() {
        LoopThread.shutDown(loops)
    }

    /// ``shutdown()`` for async code, without blocking the caller's thread
    /// while the loops wind down (see ``LoopThread/shutdownGracefully()``).
    public func shutdownGracefully() async {
        await LoopThread.shutDownWithoutBlocking(loops)
    }

    /// Each loop's runtime report (counters and live tasks), in loop order,
    /// each taken on its own loop. A loop that has shut down reports nothing.
    public func reports() async -> [RuntimeReport?] {
        var reports: [RuntimeReport?] = []
        for loop in loops {
            reports.append(await loop.run { Runtime.currentReport() })
        }
        return reports
    }

    // MARK: - TaskExecutor

    /// Places `job` on the loop its task hashes to (see the type's summary).
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        targets[placement(of: job)].enqueue(job, runAs: .group(Unmanaged.passUnretained(self)))
    }

    /// The loop a job's task lives on: a hash of the task's address. A job of
    /// a task *is* the task (the runtime enqueues the task object itself), so
    /// the address is the same for every job of it, for its whole life.
    func placement(of job: UnownedJob) -> Int {
        let address = UInt(bitPattern: unsafeBitCast(job, to: Int.self))
        // Fibonacci hashing: the high bits of the product mix every bit of the
        // address (allocations share their low bits).
        let hash = (address >> 4) &* 0x9E37_79B9_7F4A_7C15
        return Int((hash >> 32) % UInt(loops.count))
    }
}
