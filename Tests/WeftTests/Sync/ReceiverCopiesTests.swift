import Synchronization
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

    @Test("two tasks waiting on copies of one oneshot receiver are both woken by the send: one gets the value, the other ChannelClosed")
    func oneshot() throws {
        let runtime = try Runtime()
        let (sender, receiver) = oneshotChannel(of: Int.self)
        let first = runtime.spawn(receiver)
        let second = runtime.spawn(receiver)
        try Self.letTasksWait(runtime)
        try sender.send(5)
        let both = try runtime.block(on: timeoutFuture(.seconds(2), join(first, second)))
        guard case .success(let (a, b)) = both else {
            Issue.record("a task waiting on a copy of the receiver was never woken")
            return
        }
        let outcomes = [try a.get(), try b.get()]
        #expect(outcomes.count { (try? $0.get()) == 5 } == 1)
        #expect(outcomes.count { if case .failure = $0 { true } else { false } } == 1)
    }

    @Test("two tasks waiting on copies of one oneshot receiver both see ChannelClosed when the sender is dropped")
    func oneshotSenderDropped() throws {
        let runtime = try Runtime()
        var (sender, receiver): (OneshotSender<Int>?, OneshotReceiver<Int>) = oneshotChannel(of: Int.self)
        let first = runtime.spawn(receiver)
        let second = runtime.spawn(receiver)
        try Self.letTasksWait(runtime)
        sender = nil
        let both = try runtime.block(on: timeoutFuture(.seconds(2), join(first, second)))
        guard case .success(let (a, b)) = both else {
            Issue.record("a task waiting on a copy of the receiver was never woken")
            return
        }
        for outcome in [try a.get(), try b.get()] {
            guard case .failure = outcome else { Issue.record("expected ChannelClosed, got \(outcome)"); return }
        }
        _ = sender
    }

    @Test("a oneshot receive dropped by its timeout leaves no stale claim: a copy awaited in another task then gets the value")
    func oneshotAfterDroppedWaiter() throws {
        let runtime = try Runtime()
        let (sender, receiver) = oneshotChannel(of: Int.self)
        let gaveUp = try runtime.block(on: timeoutFuture(.milliseconds(10), receiver))
        guard case .failure = gaveUp else { Issue.record("no value was sent, yet got \(gaveUp)"); return }
        let later = runtime.spawn(receiver)
        try Self.letTasksWait(runtime)
        try sender.send(8)
        let outcome = try runtime.block(on: timeoutFuture(.seconds(2), later))
        #expect((try? outcome.get().get().get()) == 8)
    }

    @Test("copies of one oneshot receiver awaited at once on two loops: both tasks are woken every time, 600 channels")
    func oneshotAcrossLoops() async throws {
        let left = try LoopThread(name: "copies-left")
        let right = try LoopThread(name: "copies-right")
        defer {
            left.shutdown()
            right.shutdown()
        }
        for round in 0..<600 {
            let (sender, receiver) = oneshotChannel(of: Int.self)
            let started = StartedCount()
            let first = left.spawn { () async -> Int? in
                started.count.add(1, ordering: .relaxed)
                return try? await receiver.receive()
            }
            let second = right.spawn { () async -> Int? in
                started.count.add(1, ordering: .relaxed)
                return try? await receiver.receive()
            }
            // Vary when the value comes: while the copies register (the two
            // loops register at about the same time), or once both wait.
            if round % 2 == 1 {
                while started.count.load(ordering: .relaxed) < 2 { await Task.yield() }
                try await Task.sleep(for: .milliseconds(1))
            }
            try sender.send(round)
            let values = [try await awaitWithin(.seconds(10), first), try await awaitWithin(.seconds(10), second)]
            #expect(values.compactMap { $0 } == [round], "round \(round): \(values)")
        }
    }
}

/// How many tasks have started, shared with them.
private final class StartedCount: Sendable {
    let count = Atomic<Int>(0)
}
