import Glibc
import Testing
import Weft

/// Every leaf future that can be ready again and again takes from the task's
/// cooperative budget, so a task that keeps finding such a leaf ready yields
/// after `Budget.perPoll` ready results instead of holding the loop. Each test
/// below fails without its leaf's budget: the task then takes everything in
/// one poll.
@Suite("Every leaf that can be ready again and again takes from the budget")
struct BudgetLeavesTests {
    /// Polls `step` again and again within each of its own polls until it has
    /// seen `count` ready results, and counts the most it saw in one poll.
    final class Repeatedly: Future {
        let count: Int
        let step: (inout Context) -> Bool?
        private(set) var seen = 0
        private(set) var mostInOnePoll = 0

        /// `step` returns true for a ready result, nil for pending.
        init(_ count: Int, _ step: @escaping (inout Context) -> Bool?) {
            self.count = count
            self.step = step
        }

        func poll(_ context: inout Context) -> Poll<Int> {
            var inThisPoll = 0
            defer { mostInOnePoll = max(mostInOnePoll, inThisPoll) }
            while seen < count {
                guard step(&context) != nil else { return .pending }
                seen += 1
                inThisPoll += 1
            }
            return .ready(seen)
        }
    }

    /// Runs `step` `count` times as one task and checks it yielded within budget.
    static func expectYields(
        _ count: Int, on runtime: Runtime, sourceLocation: SourceLocation = #_sourceLocation,
        _ step: @escaping (inout Context) -> Bool?
    ) throws {
        let repeatedly = Repeatedly(count, step)
        let seen = try runtime.block(on: PollFnBox(repeatedly))
        #expect(seen == count, sourceLocation: sourceLocation)
        #expect(repeatedly.mostInOnePoll <= Budget.perPoll,
                "\(repeatedly.mostInOnePoll) ready results in one task poll; the budget is \(Budget.perPoll)",
                sourceLocation: sourceLocation)
        #expect(repeatedly.mostInOnePoll >= Budget.perPoll / 2, sourceLocation: sourceLocation)
    }

    /// A class future as a struct one.
    struct PollFnBox: Future {
        let inner: Repeatedly
        init(_ inner: Repeatedly) { self.inner = inner }
        mutating func poll(_ context: inout Context) -> Poll<Int> { inner.poll(&context) }
    }

    @Test("a broadcast receiver with many messages waiting")
    func broadcast() throws {
        let runtime = try Runtime()
        var (sender, receiver) = broadcastChannel(of: Int.self, capacity: 2_048)
        for value in 0..<1_000 { _ = try? sender.send(value) }
        try Self.expectYields(1_000, on: runtime) { context in
            if case .ready(.message?) = receiver.pollNext(&context) { return true }
            return nil
        }
        _ = consume sender
    }

    @Test("a watch receiver whose value keeps changing")
    func watch() throws {
        let runtime = try Runtime()
        let (sender, receiver) = watchChannel(initial: 0)
        var next = 0
        try Self.expectYields(1_000, on: runtime) { context in
            next += 1
            try? sender.send(next)
            var changed = receiver.changedFuture()
            if case .ready(.success) = changed.poll(&context) { return true }
            return nil
        }
    }

    @Test("oneshot receivers whose values were sent")
    func oneshot() throws {
        let runtime = try Runtime()
        try Self.expectYields(1_000, on: runtime) { context in
            let (sender, receiver) = oneshotChannel(of: Int.self)
            try? sender.send(1)
            var pending = receiver
            if case .ready(.success) = pending.poll(&context) { return true }
            return nil
        }
    }

    @Test("notified() with a notification stored each time")
    func notify() throws {
        let runtime = try Runtime()
        let notify = Notify()
        try Self.expectYields(1_000, on: runtime) { context in
            notify.notifyOne()
            var notified = notify.notifiedFuture()
            if case .ready = notified.poll(&context) { return true }
            return nil
        }
    }

    @Test("semaphore acquires and lock acquires with permits free")
    func semaphoreAndLock() throws {
        let runtime = try Runtime()
        let semaphore = AsyncSemaphore(permits: 1)
        try Self.expectYields(1_000, on: runtime) { context in
            var acquire = semaphore.acquireFuture(1)
            if case .ready = acquire.poll(&context) { return true }  // the permit goes back at once
            return nil
        }
        let lock = AsyncLock(0)
        try Self.expectYields(1_000, on: runtime) { context in
            var acquire = lock.lockFuture()
            if case .ready = acquire.poll(&context) { return true }
            return nil
        }
    }

    @Test("sends and reserves on a bounded channel with room")
    func channelSends() throws {
        let runtime = try Runtime()
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 4_096)
        try Self.expectYields(1_000, on: runtime) { context in
            var send = sender.sendFuture(1)
            if case .ready(.success) = send.poll(&context) { return true }
            return nil
        }
        try Self.expectYields(1_000, on: runtime) { context in
            var reserve = sender.reserveFuture()
            if case .ready(.success(let permit)) = reserve.poll(&context) {
                try? permit.send(2)
                return true
            }
            return nil
        }
        #expect(receiver.count == 2_000)
    }

    @Test("a reserve that waits gives back its unit once: a task polling a waiting reserve beside a ready receiver still yields (it gave back two, and the task never yielded)")
    func pendingReserveRefundsOnce() throws {
        let runtime = try Runtime()
        let (full, keep) = boundedChannel(of: Int.self, capacity: 1)
        #expect(full.trySend(0).isSuccess)  // every reserve now waits
        let (sender, receiver) = unboundedChannel(of: Int.self)
        for value in 0..<1_000 { try? sender.send(value) }
        var stream = receiver
        try Self.expectYields(1_000, on: runtime) { context in
            var reserve = full.reserveFuture()
            _ = reserve.poll(&context)  // pending: queued, then dropped
            if case .ready(_?) = stream.pollNext(&context) { return true }
            return nil
        }
        _ = consume keep
    }

    @Test("ticks of an interval that fell 300 ticks behind, with .burst")
    func intervalBurst() throws {
        let runtime = try Runtime()
        var ticks = interval(every: .milliseconds(1))
        ticks.missedTickBehavior = .burst
        usleep(300_000)  // about 300 ticks due, each ready at once
        try Self.expectYields(200, on: runtime) { context in
            if case .ready(_?) = ticks.pollNext(&context) { return true }
            return nil
        }
    }

    @Test("sleeps whose deadline has passed")
    func pastSleeps() throws {
        let runtime = try Runtime()
        try Self.expectYields(1_000, on: runtime) { context in
            var sleep = sleepFuture(for: .zero)
            if case .ready = sleep.poll(&context) { return true }
            return nil
        }
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("one-byte reads of a stream with bytes buffered")
    func streamReads() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let client = try RawSocket.connected(to: try listener.localAddress.port)
        defer { client.close() }
        client.send([UInt8](repeating: 7, count: 4_096))
        let server = try runtime.block(on: listener.acceptFuture()).get()
        var byte: UInt8 = 0
        try Self.expectYields(4_096, on: runtime) { context in
            let result = withUnsafeMutableBytes(of: &byte) { server.pollRead(&context, into: $0) }
            if case .ready(.success(1)) = result { return true }
            return nil
        }
        server.close()
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("one-byte writes to a stream whose kernel buffer takes them all")
    func streamWrites() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let client = try RawSocket.connected(to: try listener.localAddress.port)
        defer { client.close() }
        let server = try runtime.block(on: listener.acceptFuture()).get()
        var byte: UInt8 = 7
        try Self.expectYields(1_000, on: runtime) { context in
            let result = withUnsafeBytes(of: &byte) { server.pollWrite(&context, $0) }
            if case .ready(.success(1)) = result { return true }
            return nil
        }
        server.close()
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("UDP sends the kernel takes at once")
    func datagramSends() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let sender = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let address = try receiver.localAddress
        try Self.expectYields(1_000, on: runtime) { context in
            var send = sender.sendFuture([1, 2, 3], to: address)
            if case .ready(.success) = send.poll(&context) { return true }
            return nil
        }
        sender.close()
        receiver.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("accepts from a listener with a backlog of connections")
    func accepts() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let port = try listener.localAddress.port
        let clients = try (0..<200).map { _ in try RawSocket.connected(to: port) }
        defer { for client in clients { client.close() } }
        // Let libuv take the backlog into the listener's queue (128 and one more).
        try runtime.block(on: sleepFuture(for: .milliseconds(50)))
        try Self.expectYields(200, on: runtime) { context in
            var accept = listener.acceptFuture()
            if case .ready(.success(let stream)) = accept.poll(&context) {
                stream.close()
                return true
            }
            return nil
        }
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a Swift task on the loop receiving from a full channel yields the loop to its other tasks")
    func asyncReceives() throws {
        let runtime = try Runtime()
        let (sender, receiver) = unboundedChannel(of: Int.self)
        for value in 0..<10_000 { try? sender.send(value) }
        _ = consume sender
        // Without a budget for Swift jobs the task takes all 10,000 in one job.
        try Self.expectSwiftTaskYields(on: runtime) { sample in
            var received = 0
            while (try? await receiver.receive()) ?? nil != nil {
                received += 1
                if received % 100 == 0 { sample() }
            }
        }
    }

    @Test("a Swift task on the loop awaiting zero sleeps in a loop yields the loop to its other tasks")
    func asyncZeroSleeps() throws {
        let runtime = try Runtime()
        // Without a budget for a past sleep the task never suspends: the
        // other task never runs again and every sample sees the same count.
        try Self.expectSwiftTaskYields(on: runtime) { sample in
            for index in 1...2_000 {
                try? await Weft.sleep(for: .zero)
                if index % 100 == 0 { sample() }
            }
        }
    }

    /// Runs `work` as a Swift task on `runtime`'s loop beside a Weft task
    /// that counts its own turns, and checks that the count `work` sees
    /// whenever it calls `sample` moved: `work` yielded the loop. (Without,
    /// every sample sees the same count.)
    static func expectSwiftTaskYields(
        on runtime: Runtime, sourceLocation: SourceLocation = #_sourceLocation,
        _ work: @escaping @Sendable (_ sample: @escaping @Sendable () -> Void) async -> Void
    ) throws {
        let otherRuns = Shared(0)
        let seen = Shared<[Int]>([])
        let done = Shared(false)
        Task(executorPreference: runtime.taskExecutor) {
            await work { seen.update { $0.append(otherRuns.value) } }
            done.value = true
        }
        try runtime.block(on: pollFn { (context: inout Context) -> Poll<Void> in
            if done.value { return .ready(()) }
            otherRuns.update { $0 += 1 }
            context.waker.wake()
            return .pending
        })
        #expect(Set(seen.value).count > 10, "the other task's runs seen by the Swift task: \(seen.value.prefix(20))",
                sourceLocation: sourceLocation)
    }

    @Test("a Swift task on the loop writing to a stream, or sending datagrams, that the kernel keeps taking yields the loop to its other tasks",
          arguments: ["stream", "udp"])
    func asyncWritesAndSends(kind: String) throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let client = try RawSocket.connected(to: try listener.localAddress.port)
        defer { client.close() }
        let server = try runtime.block(on: listener.acceptFuture()).get()
        let receiver = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let sender = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let address = try receiver.localAddress
        try Self.expectSwiftTaskYields(on: runtime) { sample in
            for index in 1...2_000 {
                if kind == "stream" { try? await server.write([7]) } else { try? await sender.send([7], to: address) }
                if index % 100 == 0 { sample() }
            }
        }
        for socket in [sender, receiver] { socket.close() }
        server.close()
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    // Before the fix that came with this test, a pending leaf took a unit
    // too: the first 128 receivers spent the poll's budget, each later one
    // woke the task at once without looking at its queue, so the task spun
    // (hundreds of thousands of polls), and the value sent to the last
    // receiver was never seen: timed out.
    @Test("a task waiting on more pending leaves than a poll's budget (200 receivers, 200 intervals polled in turn) sleeps until one is ready, and sees a value sent to the last")
    func manyPendingLeaves() throws {
        let runtime = try Runtime()
        let channels = (0..<200).map { _ in unboundedChannel(of: Int.self) }
        var receivers = channels.map(\.1)
        let last = channels[199].0
        runtime.spawn(sleepFuture(for: .milliseconds(50)).map { _ = try? last.send(7) })
        let fanIn = pollFn { (context: inout Context) -> Poll<Int> in
            for index in receivers.indices {
                if case .ready(let value?) = receivers[index].pollNext(&context) { return .ready(value) }
            }
            return .pending
        }
        let before = runtime.statistics.polls
        #expect(try runtime.block(on: timeoutFuture(.seconds(2), fanIn)) == .success(7))
        #expect(runtime.statistics.polls - before < 50, "\(runtime.statistics.polls - before) polls")

        var intervals = (0..<200).map { index in interval(every: .seconds(index == 199 ? 0.05 : 60)) }
        let ticks = pollFn { (context: inout Context) -> Poll<Int> in
            for index in intervals.indices {
                // Each interval's first tick is ready at once; the second is the wait.
                while case .ready(let tick?) = intervals[index].pollNext(&context) {
                    if tick > 0 { return .ready(index) }
                }
            }
            return .pending
        }
        let polled = runtime.statistics.polls
        #expect(try runtime.block(on: timeoutFuture(.seconds(2), ticks)) == .success(199))
        #expect(runtime.statistics.polls - polled < 50, "\(runtime.statistics.polls - polled) polls")
    }
}
