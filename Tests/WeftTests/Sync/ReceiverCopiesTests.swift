import Testing
import Weft

/// Receivers are structs, so Swift copies them silently. A copy polled from a
/// second task must not push the first task out: every waiting task is kept
/// and woken. (With one waker slot per receiver, the first task here waits
/// forever: each test fails by its timeout.)
@Suite("Copies of one receiver waiting in several tasks")
struct ReceiverCopiesTests {
    /// Runs the loop until the spawned tasks have polled and are waiting.
    static func letTasksWait(_ runtime: Runtime) throws {
        for _ in 0..<3 { try runtime.block(on: yieldNow()) }
    }

    @Test("two tasks waiting on copies of one mpsc receiver each get one of two values")
    func mpsc() throws {
        let runtime = try Runtime()
        let (sender, receiver) = unboundedChannel(of: Int.self)
        let first = runtime.spawn(receiver.next().map { $0.0 })
        let second = runtime.spawn(receiver.next().map { $0.0 })
        try Self.letTasksWait(runtime)
        try? sender.send(1)
        try? sender.send(2)
        let both = try runtime.block(on: timeoutFuture(.seconds(2), join(first, second)))
        guard case .success(let (a, b)) = both else {
            Issue.record("a task waiting on a copy of the receiver was never woken")
            return
        }
        #expect(Set([try a.get(), try b.get()]) == [1, 2])
    }

    @Test("two tasks waiting on copies of one broadcast receiver both see the message")
    func broadcast() throws {
        let runtime = try Runtime()
        let (sender, receiver) = broadcastChannel(of: Int.self, capacity: 16)
        let first = runtime.spawn(receiver.next().map { $0.0 })
        let second = runtime.spawn(receiver.next().map { $0.0 })
        try Self.letTasksWait(runtime)
        _ = try? sender.send(7)
        let both = try runtime.block(on: timeoutFuture(.seconds(2), join(first, second)))
        guard case .success(let (a, b)) = both else {
            Issue.record("a task waiting on a copy of the receiver was never woken")
            return
        }
        for event in [try a.get(), try b.get()] {
            guard case .message(7)? = event else { Issue.record("expected message 7, got \(String(describing: event))"); return }
        }
    }

    @Test("two tasks waiting for a change on copies of one watch receiver are both served: one by each change")
    func watch() throws {
        let runtime = try Runtime()
        let (sender, receiver) = watchChannel(initial: 0)
        let first = runtime.spawn(receiver.changedFuture())
        let second = runtime.spawn(receiver.changedFuture())
        try Self.letTasksWait(runtime)
        // The copies share what they have seen: the first change serves one
        // task, and the other waits for the next.
        try? sender.send(1)
        try Self.letTasksWait(runtime)
        try? sender.send(2)
        let both = try runtime.block(on: timeoutFuture(.seconds(2), join(first, second)))
        guard case .success(let (a, b)) = both else {
            Issue.record("a task waiting on a copy of the receiver was never woken")
            return
        }
        #expect(throws: Never.self) { try a.get().get(); try b.get().get() }
    }
}
