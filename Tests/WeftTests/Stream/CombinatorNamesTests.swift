import Foundation
import Synchronization
import Testing
import Weft

// docs/ARCHITECTURE.md, "Names": the combinators of issue 22 used unqualified
// next to Foundation, Synchronization and the standard library (whose `zip`,
// `lazy` and `AsyncSequence` methods must stay as unambiguous as before).

@Suite("Combinator names next to Foundation and Synchronization")
struct CombinatorNamesTests {
    @Test("the new free functions and types work unqualified, and the standard library's zip and lazy still do")
    func unqualified() throws {
        let runtime = try Runtime()
        let both: Result<(Int, String), CocoaError> = try runtime.block(on: tryJoin(
            ready(Result<Int, CocoaError>.success(1)), lazy { ready(Result<String, CocoaError>.success("a")) }
        ))
        #expect(try both.get().0 == 1)
        let first: (output: Int, index: Int, rest: [Ready<Int>]) = try runtime.block(on: selectAll([ready(4)]))
        #expect(first.output == 4)
        let ok = try runtime.block(on: selectOk([ready(Result<Int, CocoaError>.success(2))]))
        #expect(try ok.get().success == 2)
        let all = try runtime.block(on: tryJoinAll([ready(Result<Int, CocoaError>.success(3))]))
        #expect(try all.get() == [3])
        let stream: PollStreamFn<Int> = pollStreamFn { _ in .ready(nil) }
        #expect(try runtime.block(on: stream.chain(iter([5])).collect()) == [5])
        let fused: Fuse<Ready<Int>> = ready(6).fuse()
        #expect(!fused.isTerminated)

        // The standard library's zip and lazy, and an AsyncSequence's methods, unchanged.
        #expect(Array(zip([1, 2], ["a", "b"])).count == 2)
        #expect([1, 2, 3].lazy.map { $0 * 2 }.first == 2)
        let mutex = Mutex(0)
        mutex.locked { $0 += 1 }
        #expect(mutex.locked { $0 } == 1)
    }

    @Test("AsyncSequence's own methods stay unambiguous on Weft's async sequences")
    func asyncSequenceMethods() async throws {
        let group = try LoopGroup(loops: 1, name: "names")
        defer { group.shutdown() }
        let collected = try await group.loops[0].spawn {
            var seen: [Int] = []
            for try await tick in iter(0..<3).values.filter({ $0 >= 0 }).prefix(2) {
                seen.append(tick)
            }
            return seen
        }.value
        #expect(collected == [0, 1])
    }
}
