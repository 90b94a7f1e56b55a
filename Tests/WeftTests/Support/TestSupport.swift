import Dispatch
import Foundation
import Synchronization
import Testing
import Weft

// Helpers shared by the test files. Everything here uses Weft's public API only.

// MARK: - Suites

/// Parent of every suite whose assertions depend on wall-clock timing or that
/// loads both cores. `.serialized` is recursive: the nested suites (declared in
/// extensions in their own files) run one test at a time, so a stress test never
/// runs beside a latency measurement.
@Suite(.serialized) struct TimingSensitive {}

// MARK: - Loop-thread state

/// A counter touched only on the thread running the runtime (inside futures).
final class Counter {
    var value = 0
    init(_ value: Int = 0) { self.value = value }
}

/// A mutable box touched only on the thread running the runtime.
final class Box<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// Records whether a `DropProbe` it made has been deinitialised.
final class DropFlag {
    private(set) var isDropped = false
    func makeProbe() -> DropProbe { DropProbe(self) }
    fileprivate func markDropped() { isDropped = true }
}

/// An object to capture in a future: its `deinit` tells its flag that the
/// future (and everything it captured) was dropped.
final class DropProbe {
    private let flag: DropFlag
    fileprivate init(_ flag: DropFlag) { self.flag = flag }
    /// Something to call from inside a closure so that it captures the probe.
    func touch() {}
    deinit { flag.markDropped() }
}

// MARK: - Cross-thread state

/// A value shared between threads under a lock.
final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    var value: Value {
        get { storage.locked { $0 } }
        set { storage.locked { $0 = newValue } }
    }
    func update<R: Sendable>(_ body: (inout Value) -> R) -> R {
        storage.locked { body(&$0) }
    }
}

/// An atomic integer shared between threads.
final class AtomicCounter: Sendable {
    private let storage = Atomic<Int>(0)
    init() {}
    var value: Int { storage.load(ordering: .sequentiallyConsistent) }
    @discardableResult
    func increment() -> Int {
        storage.add(1, ordering: .sequentiallyConsistent).newValue
    }
}

/// Runs `body` on a thread of its own and waits `limit` at most for it to
/// return: a check for a hang fails instead of holding the suite (the thread
/// is left behind, blocked, when it hangs). Whether it returned in time.
func returnsOnAThreadOfItsOwn(within limit: Duration = .seconds(30), _ body: @escaping @Sendable () -> Void) -> Bool {
    ForeignThread(body).join(within: limit)
}

/// A Foundation thread running `body`; `join()` waits until `body` returned.
final class ForeignThread: Sendable {
    private let done: DispatchSemaphore

    init(_ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        self.done = done
        let thread = Thread {
            body()
            done.signal()
        }
        thread.start()
    }

    func join() { done.wait() }

    /// Waits until `body` returned, `limit` at most; whether it did.
    func join(within limit: Duration) -> Bool {
        let (seconds, attoseconds) = limit.components
        return done.wait(timeout: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))) == .success
    }
}

// MARK: - Futures for tests

/// Where ``Counted`` counts: a ``Counter`` on the runtime's thread, or an
/// ``AtomicCounter`` read from another.
protocol PollCounter {
    func countPoll()
}

extension Counter: PollCounter {
    func countPoll() { value += 1 }
}

extension AtomicCounter: PollCounter {
    func countPoll() { increment() }
}

/// A future that counts how often it is polled before polling `base`.
struct Counted<Base: Future, Polls: PollCounter>: Future {
    var base: Base
    let polls: Polls

    mutating func poll(_ context: inout Context) -> Poll<Base.Output> {
        polls.countPoll()
        return base.poll(&context)
    }
}

extension Future {
    /// This future, counting its polls in `polls`.
    func counted<Polls: PollCounter>(_ polls: Polls) -> Counted<Self, Polls> { Counted(base: self, polls: polls) }
}

/// A future that holds a `DropProbe` from its first poll on, so that its flag
/// flips when the instance being polled is dropped. (A probe captured when the
/// future is built would also live in the caller's copies: `spawn` and
/// `block(on:)` take futures by value, and the argument outlives the call.)
struct Probed<Base: Future>: Future {
    var base: Base
    let flag: DropFlag
    var probe: DropProbe?

    mutating func poll(_ context: inout Context) -> Poll<Base.Output> {
        if probe == nil { probe = flag.makeProbe() }
        return base.poll(&context)
    }
}

extension Future {
    /// This future, flipping `flag` when the polled instance is dropped.
    func probed(_ flag: DropFlag) -> Probed<Self> { Probed(base: self, flag: flag) }
}

/// A hand-written leaf future completed by whoever holds its `Mailbox`: it stores
/// the newest waker on every pending poll (docs/ARCHITECTURE.md, invariant 2) and counts its polls.
final class Mailbox<Value> {
    var value: Value?
    var waker: Waker?
    var polls = 0

    init() {}

    /// The future side: ready once `value` is set.
    func receive() -> PollFn<Value> {
        pollFn { context in
            self.polls += 1
            if let value = self.value { return .ready(value) }
            self.waker = context.waker
            return .pending
        }
    }

    /// The producer side: stores the value and wakes the receiver.
    func send(_ value: Value) {
        self.value = value
        waker?.wake()
    }
}

/// A future that stays pending `count` times (waking itself each time), then is
/// ready: `count` trips through the ready queue.
func yields(_ count: Int) -> PollFn<Void> {
    var remaining = count
    return pollFn { context in
        if remaining == 0 { return .ready(()) }
        remaining -= 1
        context.waker.wake()
        return .pending
    }
}

/// Polls `future` once by hand with `waker` (no runtime involved).
func pollOnce<F: Future>(_ future: inout F, waker: Waker = .noop) -> Poll<F.Output> {
    var context = Context(waker: waker)
    return future.poll(&context)
}

// MARK: - Time

extension Duration {
    /// This duration in (fractional) milliseconds, for messages.
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1_000 + Double(attoseconds) / 1e15
    }
}

/// How long `body` takes on the continuous clock, with its result.
func measure<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> (T, Duration) {
    let start = ContinuousClock.now
    let value = try body()
    return (value, ContinuousClock.now - start)
}

/// Takes a timing measurement up to `attempts` times, until `isOnTime`
/// accepts it, and returns the last one for the test's assertions.
///
/// The rest of the suite runs beside the timing tests, so on a 2-core machine
/// a thread can be kept off the CPU for tens of milliseconds, once; a timer
/// the code fires late is late at every attempt, so the bound still catches it.
func onTimeInOneOf<T>(attempts: Int = 3, _ measurement: () throws -> T, isOnTime: (T) -> Bool) rethrows -> T {
    var result = try measurement()
    for _ in 1..<attempts where !isOnTime(result) { result = try measurement() }
    return result
}

/// ``onTimeInOneOf(attempts:_:isOnTime:)`` for a measurement that awaits.
func onTimeInOneOf<T>(attempts: Int = 3, _ measurement: () async throws -> T, isOnTime: (T) -> Bool) async rethrows -> T {
    var result = try await measurement()
    for _ in 1..<attempts where !isOnTime(result) { result = try await measurement() }
    return result
}

// MARK: - Results

extension Result {
    /// The failure, if any (`Result` with a `Void` success is not `Equatable`).
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }

    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}

extension Either {
    /// The left output, if the left branch won.
    var left: Left? {
        if case .left(let value) = self { return value }
        return nil
    }

    /// The right output, if the right branch won.
    var right: Right? {
        if case .right(let value) = self { return value }
        return nil
    }
}

/// Polls `stream` for its next element once by hand with `waker`.
func pollNextOnce<S: PollStream>(_ stream: inout S, waker: Waker = .noop) -> Poll<S.Element?> {
    var context = Context(waker: waker)
    return stream.pollNext(&context)
}

// MARK: - Hang guard

extension Runtime {
    /// `block(on:)`, but a loop that hangs fails the test instead of hanging the
    /// whole suite.
    ///
    /// A sentinel task publishes its waker; a watchdog thread wakes it when
    /// `future` went `patience` seconds without a poll, and that foreign wake
    /// ends any OS poll. (Waking the blocked-on task itself would not do: a hung
    /// loop has it queued already, so the wake is rightly a no-op.) A future
    /// polled in that time is slow, not hung (a sanitizer slows a big test past
    /// the patience), and is left alone. When `future` completes, the sentinel
    /// is finished too, so no task is left behind; it does add one task and a
    /// few polls to the statistics.
    ///
    /// Not for stuck-detection tests: the watchdog holds a waker, which the
    /// runtime rightly counts as a possible wake-up.
    func guardedBlock<F: Future>(
        on future: F,
        patience seconds: Int = 3,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws(WeftError) -> F.Output {
        let sentinelWaker = Shared<Waker?>(nil)
        let isFinished = Box(false)
        let sentinel = spawn(pollFn { (context: inout Context) -> Poll<Void> in
            if isFinished.value { return .ready(()) }
            sentinelWaker.value = context.waker
            return .pending
        })
        let rescues = AtomicCounter()
        let polls = AtomicCounter()
        let finished = DispatchSemaphore(value: 0)
        let watchdog = ForeignThread {
            var pollsSeen = 0
            while finished.wait(timeout: .now() + .seconds(seconds)) == .timedOut {
                let pollsNow = polls.value
                defer { pollsSeen = pollsNow }
                if pollsNow != pollsSeen { continue }  // polled since: slow, not hung
                rescues.increment()
                sentinelWaker.value?.wake()
            }
        }
        defer {
            finished.signal()
            watchdog.join()
            if rescues.value > 0 {
                Issue.record("""
                    BUG: block(on:) hung and was rescued by a foreign wake after \(seconds) s \
                    (\(rescues.value)×): the loop blocked in the OS poll although a task was ready \
                    (see "a timer that comes due while its task is still running …").
                    """, sourceLocation: sourceLocation)
            }
        }
        return try block(on: future.then { output in
            isFinished.value = true
            sentinelWaker.value?.wake()
            return sentinel.map { _ in output }
        }.counted(polls))  // read by the watchdog, on its thread
    }
}

/// For a test of a wake from another thread: the thread acts only once the
/// future has returned pending at its first poll (its waker registered), so
/// the wake, not a value found ready at once, is what the test sees.
/// `waited` says whether it did; a test asserts it, or it may test nothing.
final class FirstPollLatch: Sendable {
    private let state = Shared<(isOpen: Bool, waited: Bool)>((false, false))

    /// Whether the future's first poll returned pending.
    var waited: Bool { state.value.waited }

    /// On the other thread: returns once the future was first polled (at most
    /// 10 s), then the caller acts.
    func waitForFirstPoll() {
        let deadline = ContinuousClock.now + .seconds(10)
        while !state.value.isOpen && ContinuousClock.now < deadline { usleep(200) }
    }

    /// `future`, opening the latch after its first poll.
    func watching<F: Future>(_ future: F) -> PollFn<F.Output> {
        var future = future
        return pollFn { [state] context in
            let result = future.poll(&context)
            if !state.value.isOpen { state.value = (true, !result.isReady) }
            return result
        }
    }
}
