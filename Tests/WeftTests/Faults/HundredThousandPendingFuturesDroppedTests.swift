import Foundation
import Glibc
import Testing
import Weft

/// Issue 6 ("Reliability"): 100,000 pending tasks dropped at once, by abort or
/// with their runtime, leave no state, no handle and no descriptor behind, and
/// nothing that would have woken or fired them ever runs their code.
extension TimingSensitive {
    @Suite("A hundred thousand pending futures dropped at once leak nothing and are never called back")
    struct HundredThousandPendingFuturesDroppedTests {
        static let total = 100_000
        /// Connected pairs whose two ends each have a task blocked in a read.
        static let connections = 128
        /// Tasks whose waker is kept outside the runtime (by the test).
        static let wakersKeptOutside = 5_000
        /// Tasks parked on a future that never wakes anyone.
        static let neverWoken = 5_000
        /// Tasks sleeping until shortly after the drop, then counting in `fired`.
        static let soonTimers = 10_000
        /// Everyone else sleeps for an hour.
        static let hourSleeps = total - 2 * connections - wakersKeptOutside - neverWoken - soonTimers
        /// How long after the set-up's polls begin the soon timers are due:
        /// past the polls of every task however slow the machine (at 300 ms a
        /// loaded one polled some soon timers after their deadline, which fired
        /// them before the drop), and short, since the test waits it out.
        static let soonDelay: Duration = .seconds(2)

        /// 100,000 tasks, each polled once and now pending, and what observes them.
        struct Population {
            var handles: [JoinHandle<Void>] = []
            /// One per task; flips when the task's future is deinitialised.
            var flags: [DropFlag] = []
            /// Polls of any task's future.
            let polls = Counter()
            /// Soon-timer tasks whose code after the sleep ran.
            let fired = Counter()
            /// The wakers kept outside the runtime.
            let wakers = Shared<[Waker]>([])
            /// When the soon timers are due.
            let soonDeadline = Box(ContinuousClock.now)

            mutating func spawn<F: Future>(_ future: F, on runtime: Runtime) where F.Output == Void {
                let flag = DropFlag()
                flags.append(flag)
                handles.append(runtime.spawn(future.counted(polls).probed(flag)))
            }

            var droppedCount: Int { flags.count { $0.isDropped } }
        }

        /// Spawns the population on `runtime` and polls every task once.
        static func populate(_ runtime: Runtime) throws -> Population {
            var population = Population()
            population.handles.reserveCapacity(total)
            population.flags.reserveCapacity(total)

            // Connected pairs; the tasks own the streams from here on.
            let listener = try NetTest.bindLoopback(runtime)
            let address = try listener.localAddress
            var pairs = try runtime.block(on: timeoutFuture(.seconds(10), joinAll((0..<connections).map { _ in
                join(TCPStream.connectFuture(to: address), listener.acceptFuture())
            }))).get().map { connected, accepted in (try connected.get(), try accepted.get()) }
            listener.close()
            while let (client, server) = pairs.popLast() {
                population.spawn(client.readFuture().map { _ in () }, on: runtime)
                population.spawn(server.readFuture().map { _ in () }, on: runtime)
            }

            let wakers = population.wakers
            for _ in 0..<wakersKeptOutside {
                var published = false
                population.spawn(pollFn { (context: inout Context) -> Poll<Void> in
                    if !published {
                        published = true
                        wakers.update { $0.append(context.waker) }
                    }
                    return .pending
                }, on: runtime)
            }
            for _ in 0..<neverWoken {
                population.spawn(pending(Void.self), on: runtime)
            }
            // The soon timers' deadline is read at their first poll, so that it
            // falls after the set-up however long that takes.
            let deadline = population.soonDeadline
            let fired = population.fired
            for _ in 0..<soonTimers {
                var nap: Sleep?
                population.spawn(pollFn { (context: inout Context) -> Poll<Void> in
                    if nap == nil { nap = sleepFuture(until: deadline.value) }
                    guard case .ready = nap!.poll(&context) else { return .pending }
                    fired.value += 1
                    return .ready(())
                }, on: runtime)
            }
            for _ in 0..<hourSleeps {
                population.spawn(sleepFuture(for: .seconds(3_600)), on: runtime)
            }

            population.soonDeadline.value = ContinuousClock.now + soonDelay
            try runtime.block(on: yieldNow())  // every task runs once, after the ones spawned before it
            // Polls that outlasted the delay let the loop fire the soon
            // timers before the drop, which the checks would take for the bug.
            if ContinuousClock.now >= population.soonDeadline.value {
                try Test.cancel("skipped: polling the 100,000 tasks once took longer than the soon timers' \(soonDelay)")
            }
            return population
        }

        /// Checks that every task is parked as set up and nothing was dropped.
        static func expectAllPending(_ population: Population, _ runtime: Runtime) {
            #expect(population.handles.count == total)
            #expect(population.polls.value == total, "every task was polled once")
            #expect(runtime.statistics.tasksAlive == total)
            #expect(runtime.pendingTimerCount == hourSleeps + soonTimers)
            #expect(population.wakers.value.count == wakersKeptOutside)
            #expect(population.droppedCount == 0)
            #expect(population.fired.value == 0)
        }

        /// Wakes every waker kept outside, from this thread and from 8 others at once.
        static func wakeEveryKeptWaker(_ population: Population) {
            let wakers = population.wakers.value
            for waker in wakers { waker.wake() }
            let finished = Faults.onThreads(8) { _ in
                for waker in wakers { waker.wake() }
            }
            #expect(finished, "the waking threads did not finish within 20 s")
        }

        /// Every task's outcome, taken from its handle.
        static func outcomes(_ population: inout Population) -> [JoinError?] {
            population.handles.indices.map { index in
                guard case .ready(let output) = pollOnce(&population.handles[index]) else { return JoinError?.none }
                return output.failure
            }
        }

        @Test("aborting 100,000 pending tasks (sleeps, never-ready futures, TCP reads) drops every future without polling it again, closes every handle, and later wakes and due timers run none of their code")
        func abortingThemAll() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            var population = try Self.populate(runtime)
            Self.expectAllPending(population, runtime)
            #expect(runtime.openHandleCount == baseline + 2 * Self.connections)

            let (_, elapsed) = try measure {
                for handle in population.handles { handle.abort() }
                try runtime.block(on: yieldNow())
            }
            print("aborting 100,000 pending tasks: \(elapsed)")
            #expect(population.droppedCount == Self.total, "\(Self.total - population.droppedCount) futures were not deinitialised")
            #expect(population.handles.allSatisfy { $0.isFinished })
            #expect(runtime.statistics.tasksAlive == 0)
            #expect(runtime.pendingTimerCount == 0)
            #expect(runtime.openHandleCount == baseline, "every stream was closed")
            #expect(population.polls.value == Self.total, "no future was polled after the abort")

            // Late calls: every kept waker is woken, and the loop runs past the
            // soon timers' deadline.
            Self.wakeEveryKeptWaker(population)
            let remaining = population.soonDeadline.value - ContinuousClock.now
            try runtime.block(on: sleepFuture(for: max(remaining, .zero) + .milliseconds(50)))
            #expect(population.polls.value == Self.total, "a dropped future was polled")
            #expect(population.fired.value == 0, "a dropped sleep's task ran its code")
            #expect(runtime.statistics.tasksAlive == 0)
            #expect(runtime.openHandleCount == baseline)

            let outcomes = Self.outcomes(&population)
            #expect(outcomes.allSatisfy { $0 == JoinError(.aborted) })
        }

        @Test("shutting down a runtime with 100,000 pending tasks (sleeps, never-ready futures, TCP reads) drops every future and closes every handle at once; later wakes from 9 threads and the passing of the timers' deadline run none of their code")
        func shuttingTheRuntimeDown() throws {
            let runtime = try Runtime()
            var population = try Self.populate(runtime)
            Self.expectAllPending(population, runtime)

            let (_, elapsed) = try measure { try runtime.shutdown() }
            print("shutting down a runtime with 100,000 pending tasks: \(elapsed)")
            #expect(population.droppedCount == Self.total, "\(Self.total - population.droppedCount) futures were not deinitialised")
            #expect(population.handles.allSatisfy { $0.isFinished })
            #expect(runtime.statistics.tasksAlive == 0)
            #expect(runtime.pendingTimerCount == 0)
            #expect(runtime.openHandleCount == 0)

            Self.wakeEveryKeptWaker(population)
            let remaining = population.soonDeadline.value - ContinuousClock.now
            if remaining > .zero { Thread.sleep(forTimeInterval: Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18 + 0.05) }
            #expect(population.polls.value == Self.total, "a dropped future was polled")
            #expect(population.fired.value == 0, "a dropped sleep's task ran its code")
            #expect(throws: WeftError.self) { try runtime.block(on: yieldNow()) }
            #expect(population.polls.value == Self.total)

            let outcomes = Self.outcomes(&population)
            #expect(outcomes.allSatisfy { $0 == JoinError(.runtimeShutDown) })
        }

        @Test("dropping a runtime with 100,000 pending tasks (sleeps, never-ready futures, TCP reads) drops every future and releases every descriptor; later wakes from 9 threads run none of their code")
        func droppingTheRuntime() throws {
            let descriptors = Faults.openDescriptors()
            var population: Population
            do {
                let runtime = try Runtime()
                population = try Self.populate(runtime)
                Self.expectAllPending(population, runtime)
                #expect(Faults.openDescriptors() >= descriptors + 2 * Self.connections)
            }
            #expect(population.droppedCount == Self.total, "\(Self.total - population.droppedCount) futures were not deinitialised")
            #expect(population.handles.allSatisfy { $0.isFinished })
            // The sockets, and the loop's own descriptors: the loop was closed.
            let after = Faults.settle(within: .seconds(3), { Faults.openDescriptors() }) {
                $0 <= descriptors + Faults.inProcessDescriptorSlack
            }
            #expect(after <= descriptors + Faults.inProcessDescriptorSlack,
                    "descriptors: \(descriptors) before the runtime, \(after) after it was dropped")

            Self.wakeEveryKeptWaker(population)
            #expect(population.polls.value == Self.total, "a dropped future was polled")
            #expect(population.fired.value == 0)

            let outcomes = Self.outcomes(&population)
            #expect(outcomes.allSatisfy { $0 == JoinError(.runtimeShutDown) })
        }
    }
}
