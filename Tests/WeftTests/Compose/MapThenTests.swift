import Testing
import Weft

@Suite("map and then")
struct MapThenTests {
    @Test("map transforms the output once, when the future is ready")
    func mapTransformsOutput() throws {
        let runtime = try Runtime()
        let calls = Counter()
        let value = try runtime.block(on: yields(3).map { () -> String in
            calls.value += 1
            return "mapped"
        })
        #expect(value == "mapped")
        #expect(calls.value == 1)
    }

    @Test("then builds the second future from the first's output")
    func thenBuildsSecondFromFirst() throws {
        let runtime = try Runtime()
        let built = Box<Int?>(nil)
        let value = try runtime.guardedBlock(on: sleepFuture(for: .milliseconds(2)).map { 20 }.then { first -> Map<Sleep, Int> in
            built.value = first
            return sleepFuture(for: .milliseconds(2)).map { first + 22 }
        })
        #expect(built.value == 20)
        #expect(value == 42)
    }

    @Test("then never builds the second future if the first one is dropped unfinished")
    func thenDoesNotBuildWhenDropped() throws {
        let runtime = try Runtime()
        let built = Counter()
        let outcome = try runtime.guardedBlock(on: select(
            either: sleepFuture(for: .seconds(60)).then { _ -> Ready<Int> in
                built.value += 1
                return ready(1)
            },
            or: yields(1).map { "other" }
        ))
        #expect(outcome.right == "other")
        #expect(built.value == 0)
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("a chain of then steps runs each step in order")
    func thenChains() throws {
        let runtime = try Runtime()
        let log = Box<[String]>([])
        let value = try runtime.guardedBlock(on:
            ready(1)
                .then { value -> Map<PollFn<Void>, Int> in log.value.append("a\(value)"); return yields(1).map { value + 1 } }
                .then { value -> Map<Sleep, Int> in log.value.append("b\(value)"); return sleepFuture(for: .milliseconds(1)).map { value + 1 } }
                .then { value -> Ready<Int> in log.value.append("c\(value)"); return ready(value * 10) }
        )
        #expect(value == 30)
        #expect(log.value == ["a1", "b2", "c3"])
    }
}
