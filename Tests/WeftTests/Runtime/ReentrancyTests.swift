import Testing
import Weft

@Suite("Re-entrant block(on:)")
struct ReentrancyTests {
    @Test("block(on:) from inside a task throws .reentrantBlock")
    func nestedBlockThrows() throws {
        let runtime = try Runtime()
        let caught = Box<WeftError?>(nil)
        try runtime.block(on: pollFn { (_: inout Context) -> Poll<Void> in
            do throws(WeftError) {
                _ = try runtime.block(on: ready(1))
            } catch {
                caught.value = error
            }
            return .ready(())
        })
        #expect(caught.value?.kind == .reentrantBlock)
        // The outer runtime is unaffected.
        #expect(try runtime.block(on: yields(2).map { 3 }) == 3)
    }

    @Test(
        "the future given to a rejected nested block(on:) is never run"
    )
    func rejectedNestedFutureNeverRuns() throws {
        let runtime = try Runtime()
        let innerPolls = Counter()
        let caught = Box<WeftError?>(nil)
        try runtime.block(on: pollFn { (_: inout Context) -> Poll<Void> in
            do throws(WeftError) {
                _ = try runtime.block(on: ready(1).counted(innerPolls))
            } catch {
                caught.value = error
            }
            return .ready(())
        }.then { _ in yields(3) })
        #expect(caught.value?.kind == .reentrantBlock)
        #expect(innerPolls.value == 0)
        #expect(runtime.statistics.tasksSpawned == 1)
    }

    @Test("a second runtime can be blocked on from inside a task of the first")
    func nestedOtherRuntime() throws {
        let outer = try Runtime()
        let inner = try Runtime()
        let value = try outer.block(on: pollFn { (_: inout Context) -> Poll<Int> in
            let nested = try? inner.guardedBlock(on: sleepFuture(for: .milliseconds(2)).map { 40 })
            return .ready((nested ?? 0) + 2)
        }.then { value in yieldNow().map { value } })
        #expect(value == 42)
        #expect(inner.statistics.tasksAlive == 0)
        #expect(outer.statistics.tasksSpawned == 1)
    }

    @Test("a block(on:) of a second runtime inside a task leaves that task's poll its budget (it was left unlimited, so the task never had to yield)")
    func nestedBlockKeepsTheOuterBudget() throws {
        let outer = try Runtime()
        let inner = try Runtime()
        let budgetSpent = try outer.block(on: pollFn { (_: inout Context) -> Poll<Bool> in
            #expect(Budget.consume())
            _ = try? inner.guardedBlock(on: ready(()))
            for _ in 1..<Budget.perPoll { _ = Budget.consume() }
            return .ready(!Budget.consume())
        })
        #expect(budgetSpent, "the outer task's budget was unlimited after the nested block(on:)")
    }
}
