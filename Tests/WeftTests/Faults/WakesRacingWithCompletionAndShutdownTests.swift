import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing
import Weft

/// Issue 6 ("Reliability"): wakes from other threads that race with the
/// completion of their task, or with the shutdown of its runtime, never crash,
/// never hang, and never lose a wake that is owed.
extension TimingSensitive {
    @Suite("Wakes racing with task completion and runtime shutdown")
    struct WakesRacingWithCompletionAndShutdownTests {
        static let threads = 8
        static let completionIterations = 1_000
        static let shutdownIterations = 300
        static let wakesPerThread = 200
        /// How long a wake that is owed may take before it counts as lost.
        static let patience: Duration = .seconds(5)

        /// A task's future that stays pending until `released` is set.
        final class Racer: @unchecked Sendable {
            /// Set by a foreign thread just before its owed wake.
            let released = Atomic<Bool>(false)
            /// The task's waker, published at its first poll.
            let waker = Mutex<Waker?>(nil)
            let published = DispatchSemaphore(value: 0)
            /// Polls so far; touched only on the loop thread (inside the future).
            var polls = 0

            func future() -> PollFn<Void> {
                pollFn { context in
                    self.polls += 1
                    if self.released.load(ordering: .acquiring) { return .ready(()) }
                    if self.polls == 1 {
                        self.waker.locked { $0 = context.waker }
                        for _ in 0..<WakesRacingWithCompletionAndShutdownTests.threads { self.published.signal() }
                    }
                    return .pending
                }
            }
        }

        @Test("8 threads waking a task 200 times each while one of them releases it at a random wake: it completes every time (1,000 runs) and no wake is lost")
        func wakesRacingWithCompletion() throws {
            let runtime = try Runtime()
            var lost = 0
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<Self.completionIterations {
                let racer = Racer()
                let task = runtime.spawn(racer.future())
                // One thread releases the task at a random point of its wakes
                // and wakes it (the owed wake); the others keep waking before,
                // during and after the completion.
                let releaseAt = Int.random(in: 0..<Self.wakesPerThread, using: &generator)
                let wakers = (0..<Self.threads).map { thread in
                    ForeignThread {
                        racer.published.wait()
                        let waker = racer.waker.locked { $0 }!
                        for index in 0..<Self.wakesPerThread {
                            if thread == 0 && index == releaseAt { racer.released.store(true, ordering: .releasing) }
                            waker.wake()
                        }
                    }
                }
                let outcome = try runtime.block(on: select(either: task, or: sleepFuture(for: Self.patience)))
                wakers.forEach { $0.join() }
                switch outcome {
                case .left(.success):
                    break
                case .left(.failure(let error)):
                    Issue.record("the task failed: \(error)")
                case .right:
                    lost += 1
                    task.abort()
                }
                // The late wakes (after the completion) left nothing to run.
                try runtime.block(on: yieldNow())
                #expect(runtime.statistics.tasksAlive == 0)
            }
            #expect(lost == 0, "\(lost) of \(Self.completionIterations) tasks were not woken within \(Self.patience) after their release")
        }

        @Test("8 threads waking 8 tasks while their runtime is shut down or dropped (300 runs, alternating): no crash, every task ends with .runtimeShutDown and its future is dropped, and a task on another runtime awaiting one of them is woken")
        func wakesRacingWithShutdown() throws {
            var hung = 0
            var wrongOutcomes = 0
            var raced = 0
            var generator = SystemRandomNumberGenerator()
            for iteration in 0..<Self.shutdownIterations {
                var runtime: Runtime? = try Runtime()
                let flags = (0..<8).map { _ in DropFlag() }
                let wakers = Shared<[Waker]>([])
                let handles = flags.map { flag in
                    runtime!.spawn(pollFn { (context: inout Context) -> Poll<Int> in
                        wakers.update { $0.append(context.waker) }
                        return .pending
                    }.probed(flag))
                }
                try runtime!.block(on: yieldNow())
                let kept = wakers.value
                #expect(kept.count == 8)

                // The owed wake: a task of another runtime, on another thread,
                // awaits the first task's handle; its shutdown must wake it.
                let awaited = handles[0]
                let awaiting = DispatchSemaphore(value: 0)
                let awaiterOutcome = Shared<String>("")
                let awaiter = ForeignThread {
                    do {
                        let other = try Runtime()
                        var handle = awaited
                        var signalled = false
                        let waiting = pollFn { (context: inout Context) -> Poll<Result<Int, JoinError>> in
                            let poll = handle.poll(&context)
                            if !signalled, case .pending = poll {
                                signalled = true
                                awaiting.signal()
                            }
                            return poll
                        }
                        switch try other.block(on: select(either: waiting, or: sleepFuture(for: Self.patience))) {
                        case .left(let result): awaiterOutcome.value = "\(result.failure.map { "\($0.reason)" } ?? "success")"
                        case .right: awaiterOutcome.value = "not woken"
                        }
                    } catch {
                        awaiterOutcome.value = "\(error)"
                    }
                    if awaiterOutcome.value != "runtimeShutDown" { awaiting.signal() }
                }
                awaiting.wait()

                // 8 threads wake every task while this thread shuts the runtime down.
                let stop = Atomic<Bool>(false)
                let rounds = Atomic<Int>(0)
                let started = DispatchSemaphore(value: 0)
                let wakerThreads = (0..<Self.threads).map { _ in
                    ForeignThread {
                        started.signal()
                        var done = 0
                        while !stop.load(ordering: .acquiring) || done < 50 {
                            for waker in kept { waker.wake() }
                            done += 1
                            rounds.add(1, ordering: .relaxed)
                            sched_yield()  // 2 cores: let the shutting-down thread run
                        }
                    }
                }
                for _ in 0..<Self.threads { started.wait() }
                let pause = ContinuousClock.now + .microseconds(Int.random(in: 0...300, using: &generator))
                while ContinuousClock.now < pause {}
                let roundsBefore = rounds.load(ordering: .relaxed)
                if iteration.isMultiple(of: 2) {
                    try runtime!.shutdown()
                    #expect(runtime!.openHandleCount == 0)
                }
                runtime = nil
                if rounds.load(ordering: .relaxed) > roundsBefore { raced += 1 }
                stop.store(true, ordering: .releasing)
                wakerThreads.forEach { $0.join() }
                awaiter.join()

                if awaiterOutcome.value != "runtimeShutDown" {
                    hung += 1
                    Issue.record("the task awaiting a handle of the shut-down runtime ended with: \(awaiterOutcome.value)")
                }
                // The first handle's output went to the awaiter.
                var outcomes = Array(handles.dropFirst())
                for index in outcomes.indices {
                    guard case .ready(let output) = pollOnce(&outcomes[index]), output.failure == JoinError(.runtimeShutDown) else {
                        wrongOutcomes += 1
                        continue
                    }
                }
                #expect(flags.allSatisfy { $0.isDropped }, "a future of the shut-down runtime was not dropped")
                // Late wakes on the dead runtime's tasks do nothing.
                for waker in kept { waker.wake() }
            }
            print("wakes racing with shutdown: wakes landed during the shutdown in \(raced) of \(Self.shutdownIterations) runs")
            #expect(hung == 0)
            #expect(wrongOutcomes == 0, "\(wrongOutcomes) handles did not end with .runtimeShutDown")
        }
    }
}
