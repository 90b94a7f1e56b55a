import Testing
import Weft
import Glibc

@Suite("Oneshot channel")
struct SyncOneshotTests {
    @Test("a oneshot receiver gets the value sent from another task")
    func deliversValue() throws {
        let runtime = try Runtime()
        let (sender, receiver) = oneshotChannel(of: Int.self)
        runtime.spawn(yields(3).map { try? sender.send(42) })
        let result = try runtime.guardedBlock(on: receiver)
        #expect(result == .success(42))
    }

    @Test("a oneshot receiver reports ChannelClosed when the sender is dropped without sending")
    func droppedSenderCloses() throws {
        let runtime = try Runtime()
        var (sender, receiver): (OneshotSender<Int>?, OneshotReceiver<Int>) = oneshotChannel(of: Int.self)
        var pending = receiver
        #expect(pollFuture(&pending) == .pending)
        sender = nil
        _ = sender
        let result = try runtime.guardedBlock(on: receiver)
        #expect(result == .failure(ChannelClosed()))
    }

    @Test("a oneshot send fails with the value back when the receiver is gone")
    func sendToDroppedReceiverFails() {
        let (sender, receiver) = oneshotChannel(of: String.self)
        _ = consume receiver
        #expect(sender.isClosed)
        guard let error = sendError({ () throws(SendError<String>) in try sender.send("kept") }) else {
            Issue.record("send succeeded without a receiver")
            return
        }
        #expect(error.value == "kept")
    }

    @Test("only the first oneshot send delivers")
    func secondSendFails() throws {
        let (sender, receiver) = oneshotChannel(of: Int.self)
        #expect((try? sender.send(1)) != nil)
        #expect(sendError { () throws(SendError<Int>) in try sender.send(2) }?.value == 2)
        var future = receiver
        #expect(pollFuture(&future) == .ready(.success(1)))
    }

    @Test("a oneshot sent from a foreign thread wakes the loop")
    func foreignSend() throws {
        let runtime = try Runtime()
        let (sender, receiver) = oneshotChannel(of: Int.self)
        let latch = FirstPollLatch()
        let thread = ForeignThread {
            latch.waitForFirstPoll()
            try? sender.send(7)
        }
        defer { thread.join() }
        #expect(try runtime.guardedBlock(on: latch.watching(receiver)) == .success(7))
        #expect(latch.waited, "the value was there at the first poll: the foreign wake was not tested")
    }

    @Test("a sent value nobody takes is destroyed once both halves are gone, and not before the sender goes")
    func untakenValueIsDestroyed() {
        let destroyed = AtomicCounter()
        var sender: OneshotSender<CountedDrop>? = nil
        do {
            let (tx, receiver) = oneshotChannel(of: CountedDrop.self)
            sender = tx
            #expect((try? tx.send(CountedDrop(destroyed))) != nil)
            _ = consume receiver
        }
        #expect(destroyed.value == 0, "the sender still holds the channel")
        #expect(sender?.isClosed == true)
        sender = nil
        #expect(destroyed.value == 1)
    }

    @Test("a value a failed send hands back is the caller's again, and the channel destroys nothing")
    func failedSendKeepsValue() {
        let destroyed = AtomicCounter()
        let (sender, receiver) = oneshotChannel(of: CountedDrop.self)
        _ = consume receiver
        let returned = sendError { () throws(SendError<CountedDrop>) in try sender.send(CountedDrop(destroyed)) }?.value
        #expect(returned != nil)
        #expect(destroyed.value == 0)
        withExtendedLifetime(returned) {}
    }

    @Test("10,000 oneshots sent from a foreign thread as the loop awaits them all arrive")
    func foreignSendsRaceRegistration() throws {
        let runtime = try Runtime()
        let pairs = (0..<10_000).map { _ in oneshotChannel(of: Int.self) }
        let senders = pairs.map(\.0)
        let thread = ForeignThread {
            for (index, sender) in senders.enumerated() {
                try? sender.send(index)
                if index % 64 == 0 { sched_yield() }
            }
        }
        defer { thread.join() }
        let received = try runtime.guardedBlock(on: timeoutFuture(.seconds(30), joinAll(pairs.map(\.1))))
        #expect(try received.get() == (0..<10_000).map { .success($0) })
    }

    @Test("10,000 senders dropped on a foreign thread as the loop awaits end every receiver with ChannelClosed")
    func foreignDropsRaceRegistration() throws {
        let runtime = try Runtime()
        let pairs = (0..<10_000).map { _ in oneshotChannel(of: Int.self) }
        let senders = Shared(pairs.map(\.0))
        let receivers = pairs.map(\.1)
        _ = consume pairs
        let thread = ForeignThread {
            for index in 0..<10_000 {
                senders.update { _ = $0.popLast() }
                if index % 64 == 0 { sched_yield() }
            }
        }
        defer { thread.join() }
        let received = try runtime.guardedBlock(on: timeoutFuture(.seconds(30), joinAll(receivers)))
        #expect(try received.get().allSatisfy { $0 == .failure(ChannelClosed()) })
    }

    @Test("two threads sending on one oneshot at once: exactly one delivers, 1,000 times")
    func racingSendsDeliverOnce() {
        for _ in 0..<1_000 {
            let (sender, receiver) = oneshotChannel(of: Int.self)
            let delivered = AtomicCounter()
            let other = ForeignThread { if (try? sender.send(1)) != nil { delivered.increment() } }
            if (try? sender.send(2)) != nil { delivered.increment() }
            other.join()
            var future = receiver
            #expect(delivered.value == 1)
            #expect(pollFuture(&future).isReady)
        }
    }

    @Test("oneshot receive works from async code")
    func asyncReceive() throws {
        let runtime = try Runtime()
        let (sender, receiver) = oneshotChannel(of: Int.self)
        let result = try runtime.guardedBlock(on: AsyncFuture {
            async let received = try? receiver.receive()
            try? sender.send(5)
            return await received
        })
        #expect(result == 5)
    }
}

/// A value that counts its own destruction.
private final class CountedDrop: Sendable {
    let counter: AtomicCounter
    init(_ counter: AtomicCounter) { self.counter = counter }
    deinit { counter.increment() }
}
