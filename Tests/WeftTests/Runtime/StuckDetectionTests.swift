import Foundation
import Synchronization
import Testing
import Weft

/// A hand-written leaf future completed by a Foundation thread, which holds its
/// waker meanwhile (the async book's `TimerFuture` situation).
private final class ThreadSignal: Sendable {
    private struct State {
        var isSet = false
        var waker: Waker?
    }
    private let state = Mutex(State())

    func future() -> PollFn<Void> {
        pollFn { (context: inout Context) -> Poll<Void> in
            self.state.locked { state in
                if state.isSet { return .ready(()) }
                state.waker = context.waker
                return .pending
            }
        }
    }

    var hasWaker: Bool { state.locked { $0.waker != nil } }

    func set() {
        let waker = state.locked { state -> Waker? in
            state.isSet = true
            return state.waker.take()
        }
        waker?.wake()
    }

    /// Forgets the waker without waking it.
    func dropWaker() {
        state.locked { $0.waker = nil }
    }
}

/// Invariant 7: no silent hang.
@Suite("Stuck block(on:) detection")
struct StuckDetectionTests {
    @Test("block(on:) of a future that never completes throws .stuck instead of hanging")
    func pendingForeverIsStuck() throws {
        let runtime = try Runtime()
        let error = #expect(throws: WeftError.self) {
            try runtime.block(on: pending(Int.self))
        }
        #expect(error?.kind == .stuck)
        #expect(error?.operation == "block(on:)")
        #expect(error.map { "\($0)".contains("stuck") } == true)
        // The stuck future was cancelled; the runtime is still usable.
        #expect(runtime.statistics.tasksAlive == 0)
        #expect(try runtime.block(on: ready(5)) == 5)
    }

    @Test("other tasks that can never be woken do not keep block(on:) from reporting .stuck")
    func stuckWithOtherDeadTasks() throws {
        let runtime = try Runtime()
        for _ in 0..<3 { _ = runtime.spawn(pending(Void.self)) }
        let error = #expect(throws: WeftError.self) {
            try runtime.block(on: yields(2).then { _ in pending(Int.self) })
        }
        #expect(error?.kind == .stuck)
    }

    @Test("a future whose waker is held by a thread that wakes it after 50 ms is not stuck and completes")
    func wakerHeldByThreadIsNotStuck() throws {
        let runtime = try Runtime()
        let signal = ThreadSignal()
        let thread = ForeignThread {
            while !signal.hasWaker { Thread.sleep(forTimeInterval: 0.001) }
            Thread.sleep(forTimeInterval: 0.05)
            signal.set()
        }
        let (value, elapsed) = try measure {
            try runtime.block(on: signal.future().map { "woken" })
        }
        thread.join()
        #expect(value == "woken")
        #expect(elapsed >= .milliseconds(50))
        #expect(elapsed < .seconds(5))
    }

    @Test("a waker dropped by its thread without waking ends block(on:) with .stuck")
    func droppedForeignWakerBecomesStuck() throws {
        let runtime = try Runtime()
        let signal = ThreadSignal()
        let thread = ForeignThread {
            while !signal.hasWaker { Thread.sleep(forTimeInterval: 0.001) }
            Thread.sleep(forTimeInterval: 0.05)
            signal.dropWaker()
        }
        var caught: WeftError?
        let (_, elapsed) = measure { () -> Void in
            do throws(WeftError) {
                try runtime.block(on: signal.future())
            } catch {
                caught = error
            }
        }
        thread.join()
        #expect(caught?.kind == .stuck)
        #expect(elapsed >= .milliseconds(50))
        #expect(elapsed < .seconds(5))
    }

    @Test("an armed timer counts as progress: block(on:) reports .stuck only after it fired")
    func timersCountAsProgress() throws {
        let runtime = try Runtime()
        let start = ContinuousClock.now
        let error = #expect(throws: WeftError.self) {
            try runtime.block(on: join(sleepFuture(for: .milliseconds(30)), pending(Int.self)))
        }
        let elapsed = ContinuousClock.now - start
        #expect(error?.kind == .stuck)
        #expect(elapsed >= .milliseconds(30))
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("awaiting a spawned task that can never finish is reported stuck when nothing else holds its handle")
    func awaitingDeadTaskIsStuck() throws {
        let runtime = try Runtime()
        let error = #expect(throws: WeftError.self) {
            try runtime.block(on: runtime.spawn(pending(Int.self)))
        }
        #expect(error?.kind == .stuck)
    }

    @Test("two tasks awaiting copies of one dead task's handle are reported stuck, not taken for wakers held outside")
    func awaitingCopiesOfADeadHandleIsStuck() {
        let caught = Mutex<WeftError?>(nil)
        let ended = returnsOnAThreadOfItsOwn {
            do throws(WeftError) {
                let runtime = try Runtime()
                var never: JoinHandle<Int>? = runtime.spawn(pending(Int.self))
                // No handle left here: one could abort them, so the check would
                // rightly count it as a possible wake-up.
                _ = try runtime.block(on: join(runtime.spawn(never!), runtime.spawn(never.take()!)))
            } catch {
                caught.locked { $0 = error }
            }
        }
        #expect(ended, "block(on:) hung: the wakers kept for two copies of one handle were taken for outside ones")
        #expect(caught.locked { $0?.kind } == .stuck)
    }

    @Test("a waiter that gave up awaiting a handle holds it no more (a task that finished, a set of joined handles dropped by its timeout), nor does the no-op waker nowOrNever leaves in the join slot: the waker another thread holds keeps block(on:) waiting, not .stuck",
          arguments: ["finished task", "dropped joinAll", "nowOrNever"])
    func waiterThatGaveUpIsNotAHandle(giveUp: String) throws {
        let runtime = try Runtime()
        let signal = ThreadSignal()
        var worker: JoinHandle<Void>? = runtime.spawn(signal.future())
        switch giveUp {
        case "finished task": runtime.spawn(timeoutFuture(.milliseconds(1), worker!))  // gives up after 1 ms and finishes
        case "dropped joinAll": runtime.spawn(timeoutFuture(.milliseconds(1), joinAll([worker!])))  // drops the set after 1 ms
        default: #expect(worker!.nowOrNever() == nil)
        }
        let thread = ForeignThread {
            while !signal.hasWaker { Thread.sleep(forTimeInterval: 0.001) }
            Thread.sleep(forTimeInterval: 0.05)
            signal.set()
        }
        defer { thread.join() }
        let outcome = try runtime.block(on: worker.take()!)
        #expect((try? outcome.get()) != nil, "\(outcome)")
    }

    @Test("a JoinHandle kept outside counts as a possible wake-up: aborting it from another thread ends the wait")
    func keptHandleIsAWakeUp() throws {
        let runtime = try Runtime()
        let never = runtime.spawn(pending(Int.self))
        let aborter = ForeignThread {
            Thread.sleep(forTimeInterval: 0.2)
            never.abort()
        }
        defer { aborter.join() }
        let outcome = try runtime.block(on: never)
        #expect(outcome == .failure(JoinError(.aborted)))
    }
}
