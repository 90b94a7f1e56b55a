// EXPERIMENTAL. Built on Swift 6.3's `ExecutorFactory`, which is behind
// `@_spi(ExperimentalCustomExecutors)`: the SPI may change or go in any
// release, and so may this file. Nothing else in Weft depends on it.

@_spi(ExperimentalCustomExecutors) @_spi(ExperimentalScheduling) import _Concurrency
import Synchronization

/// **Experimental.** Makes a ``LoopGroup`` Swift's default executor, so that
/// plain Swift concurrency — `Task { }`, `Task.detached { }`, and every
/// nonisolated async function's jobs, which would otherwise go to the global
/// cooperative pool — runs on Weft's loops, each task placed on one loop for
/// its whole life (see ``LoopGroup``). Code in such a task can open listeners
/// and streams without naming a loop, and awaits them without a hop.
///
/// ```swift
/// let group = try LoopGroup()
/// WeftDefaultExecutor.install(group)          // first thing in main
/// let listener = try await Task { try TCPListener.bind(SocketAddress("127.0.0.1:0")) }.value   // on a Weft loop
/// ```
///
/// **What Swift 6.3.1 on Linux allows, and what it does not.** The SPI's
/// documented hook is `typealias DefaultExecutorFactory = SomeFactory` in the
/// main module: the compiler then calls `_createExecutors(factory:)` before
/// `main`. On Linux with 6.3.1 the runtime asks that factory for both
/// executors and then, at the first use of either, replaces them with the
/// platform's (Dispatch) ones: a main executor given that way never has its
/// `run()` called and sees no job, and `Task.defaultExecutor` is Dispatch's
/// again (checked with a counting factory; docs/ARCHITECTURE.md,
/// "Experimental: Weft as Swift's default executor"). So the `@main` function
/// and `MainActor` stay on Dispatch's main queue. What works is installing the
/// executors *after* that first use, which this function does: from then on
/// every new task and every global job goes to `group`.
///
/// Call it once, early, before starting work that should run on the loops
/// (jobs already queued on Dispatch's pool finish there). The group is kept
/// for the life of the process.
///
/// **Sleeps.** `Task.sleep` (and `ContinuousClock().sleep`) asks the default
/// executor to run its wake-up after the delay (Swift's `SchedulingExecutor`);
/// one that cannot makes the runtime trap. The group hands such a wake-up to
/// the platform's executor, whose timer runs it on a Dispatch thread; the
/// sleeping task then goes on on a loop, as before its sleep.
public enum WeftDefaultExecutor {
    private static let installed = Mutex<LoopGroup?>(nil)

    /// Makes `group` the default executor (see the type). A second call
    /// replaces the group for tasks started afterwards.
    public static func install(_ group: LoopGroup) {
        installed.locked { $0 = group }
        // The runtime's one-time creation of the platform executors runs at
        // the first use; run it now, so it cannot replace ours afterwards.
        _ = Task.defaultExecutor
        _createExecutors(factory: Factory.self)
    }

    /// The group installed, if any.
    public static var group: LoopGroup? { installed.locked { $0 } }

    /// Hands the runtime the installed group as the default executor, and
    /// the platform's main executor as the main one (the one already running
    /// `main`; a Weft one could not take over, see the type).
    struct Factory: ExecutorFactory {
        static var mainExecutor: any MainExecutor { PlatformExecutorFactory.mainExecutor }
        static var defaultExecutor: any TaskExecutor {
            guard let group = WeftDefaultExecutor.group else { return PlatformExecutorFactory.defaultExecutor }
            return group
        }
    }
}

/// What makes `Task.sleep` work under ``WeftDefaultExecutor``: the runtime asks
/// the default executor to run the sleep's wake-up job after its delay, and
/// trapped ("Unexpectedly found nil") when the group, a plain `TaskExecutor`,
/// could not. The delayed job goes to the platform's (Dispatch's) executor,
/// which has timers for Swift's clocks; what it runs is only the wake-up,
/// which enqueues the sleeping task on its own executor again: the group.
@_spi(ExperimentalScheduling) extension LoopGroup: SchedulingExecutor {
    public func enqueue<C: Clock>(_ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C) {
        Self.platformScheduler.enqueue(job, after: delay, tolerance: tolerance, clock: clock)
    }

    public func enqueue<C: Clock>(_ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C) {
        Self.platformScheduler.enqueue(job, at: instant, tolerance: tolerance, clock: clock)
    }

    /// The platform's default executor, which schedules (Dispatch's, on Linux).
    private static var platformScheduler: any SchedulingExecutor {
        guard let scheduler = PlatformExecutorFactory.defaultExecutor as? any SchedulingExecutor else {
            fatalError("the platform's default executor cannot run a job after a delay")
        }
        return scheduler
    }
}
