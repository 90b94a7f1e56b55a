import Testing
import Weft

@Suite("Multi-producer channels")
struct SyncChannelTests {
    @Test("a bounded channel delivers every value in order and ends when the sender is gone")
    func boundedOrderAndEnd() throws {
        let runtime = try Runtime()
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 4)
        runtime.spawn(SendAll(sender, Array(0..<1_000)))
        _ = consume sender  // the task's copy is the last sender
        let received = try runtime.guardedBlock(on: collectAll(receiver))
        #expect(received == Array(0..<1_000))
    }

    @Test("a receiver's stream ends only when every clone of the sender is gone")
    func endsWhenAllClonesGone() throws {
        let runtime = try Runtime()
        let (sender, receiver) = unboundedChannel(of: Int.self)
        let clone = sender.clone()
        try? sender.send(1)
        _ = consume sender
        var stream = receiver
        #expect(pollNextOnce(&stream) == .ready(1))
        #expect(pollNextOnce(&stream) == .pending)
        try? clone.send(2)
        _ = consume clone
        let rest = try runtime.guardedBlock(on: collectAll(stream))
        #expect(rest == [2])
    }

    @Test("a full bounded channel makes send wait until the receiver takes a value")
    func backpressure() throws {
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 2)
        #expect(sender.trySend(1).isSuccess)
        #expect(sender.trySend(2).isSuccess)
        guard case .failure(.full(3)) = sender.trySend(3) else {
            Issue.record("trySend on a full channel did not report full")
            return
        }
        let senderWakes = AtomicCounter()
        var send = sender.sendFuture(3)
        #expect(!pollFuture(&send, waker: Waker { senderWakes.increment() }).isReady)
        // A later trySend does not overtake the waiting send.
        var stream = receiver
        #expect(pollNextOnce(&stream) == .ready(1))
        #expect(senderWakes.value == 1)
        #expect(sender.trySend(4).failure != nil)
        #expect(pollFuture(&send).isReady)
        #expect(pollNextOnce(&stream) == .ready(2))
        #expect(pollNextOnce(&stream) == .ready(3))
        #expect(stream.count == 0)
    }

    @Test("waiting senders get room in the order they started waiting")
    func waitingSendersAreFIFO() throws {
        let runtime = try Runtime()
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 1)
        #expect(sender.trySend(0).isSuccess)
        for value in 1...5 { runtime.spawn(sender.clone().sendFuture(value)) }
        _ = consume sender
        let received = try runtime.guardedBlock(on: yields(2).then { _ in collectAll(receiver) })
        #expect(received == [0, 1, 2, 3, 4, 5])
    }

    @Test("a send fails with its value back when the receiver is gone, also while waiting")
    func sendToDroppedReceiver() throws {
        let (sender, receiver) = boundedChannel(of: String.self, capacity: 1)
        #expect(sender.trySend("a").isSuccess)
        var waiting = sender.sendFuture("b")
        #expect(!pollFuture(&waiting).isReady)
        _ = consume receiver
        #expect(sender.isClosed)
        guard case .ready(.failure(let error)) = pollFuture(&waiting) else {
            Issue.record("a waiting send did not fail when the receiver went away")
            return
        }
        #expect(error.value == "b")
        guard case .failure(.closed("c")) = sender.trySend("c") else {
            Issue.record("trySend after the receiver went away did not report closed")
            return
        }
        let (unbounded, unboundedReceiver) = unboundedChannel(of: Int.self)
        _ = consume unboundedReceiver
        #expect(sendError { () throws(SendError<Int>) in try unbounded.send(9) }?.value == 9)
    }

    @Test("dropping a pending receive future loses no value")
    func droppedReceiveLosesNothing() throws {
        let runtime = try Runtime()
        let (sender, receiver) = unboundedChannel(of: Int.self)
        var next = receiver.next()
        #expect(pollFuture(&next).isReady == false)
        _ = consume next
        try? sender.send(1)
        try? sender.send(2)
        _ = consume sender
        #expect(try runtime.guardedBlock(on: collectAll(receiver)) == [1, 2])
    }

    @Test("dropping a waiting send leaves the queue and unblocks the senders behind it")
    func droppedSendLeavesQueue() throws {
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 1)
        #expect(sender.trySend(0).isSuccess)
        var dropped = sender.sendFuture(1)
        var kept = sender.sendFuture(2)
        #expect(!pollFuture(&dropped).isReady)
        #expect(!pollFuture(&kept).isReady)
        _ = consume dropped
        var stream = receiver
        #expect(pollNextOnce(&stream) == .ready(0))
        #expect(pollFuture(&kept).isReady)
        #expect(pollNextOnce(&stream) == .ready(2))
    }

    @Test("channel send and receive work from async code")
    func asyncFaces() throws {
        let runtime = try Runtime()
        // The producer runs on the runtime's own loop: a plain Task would need a
        // thread of the cooperative pool, which other tests may be blocking.
        let loop = runtime.taskExecutor
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 2)
        let sum = try runtime.guardedBlock(on: AsyncFuture { () -> Int in
            let producer = Task(executorPreference: loop) {
                for value in 1...100 { _ = try? await sender.send(value) }
            }
            var sum = 0
            var count = 0
            while count < 100, let value = try? await receiver.receive() {
                sum += value
                count += 1
            }
            await producer.value
            return sum
        })
        #expect(sum == 5050)
    }

    @Test("a receiver is an AsyncSequence through values")
    func valuesSequence() throws {
        let runtime = try Runtime()
        let (sender, receiver) = unboundedChannel(of: Int.self)
        for value in 1...10 { try? sender.send(value) }
        _ = consume sender
        let all = try runtime.guardedBlock(on: AsyncFuture { () -> [Int] in
            var all: [Int] = []
            do {
                for try await value in receiver.values { all.append(value) }
            } catch {}
            return all
        })
        #expect(all == Array(1...10))
    }
}
