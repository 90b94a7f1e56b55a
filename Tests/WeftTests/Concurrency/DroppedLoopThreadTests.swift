import Foundation
@testable import Weft
import Testing

/// A loop thread, or a group, whose last reference goes without a shutdown.
/// Before the fix that came with these tests, each ran for the process's life,
/// out of anyone's reach: its thread, its loop and their descriptors.
@Suite("Loop threads nobody holds")
struct DroppedLoopThreadTests {
    /// The threads of this process whose name is `name`.
    static func threads(named name: String) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.count { task in
            (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) == name + "\n"
        }
    }

    /// Waits up to 30 s for no thread to be named `name`; how many are left.
    static func threadsLeft(named name: String) -> Int {
        let deadline = ContinuousClock.now + .seconds(30)
        while threads(named: name) > 0 && ContinuousClock.now < deadline { usleep(10_000) }
        return threads(named: name)
    }

    @Test("20 loop threads and a group of 3 dropped without a shutdown stop, and their threads end")
    func droppedLoopsEnd() throws {
        for _ in 0..<20 { _ = try LoopThread(name: "weft-dropped") }
        _ = try LoopGroup(loops: 3, name: "weft-dropgrp")
        #expect(Self.threadsLeft(named: "weft-dropped") == 0)
        #expect(Self.threadsLeft(named: "weft-dropgrp-0") == 0)
        #expect(Self.threadsLeft(named: "weft-dropgrp-2") == 0)
    }

    @Test("a loop thread dropped while a task it spawned runs keeps running it, uncancelled, to its end, then stops")
    func droppedLoopFinishesItsTasks() async throws {
        let gate = CancellationToken()
        let task: Task<Bool, any Error>
        do {
            let loop = try LoopThread(name: "weft-dropkeep")
            task = loop.spawn { () async throws -> Bool in
                try await gate.cancelled()
                try await Weft.sleep(for: .milliseconds(10))  // a timer of the loop still works
                return Task.isCancelled
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(Self.threads(named: "weft-dropkeep") == 1, "the loop stopped under a running task")
        gate.cancel()
        #expect(try await awaitWithin(.seconds(30), task) == false, "the task was cancelled")
        let left = await Task.detached { Self.threadsLeft(named: "weft-dropkeep") }.value
        #expect(left == 0)
    }
}
