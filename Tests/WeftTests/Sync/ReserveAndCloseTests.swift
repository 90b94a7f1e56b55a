import Testing
import Weft

/// More of what Tokio users look for: reserving room in a bounded channel
/// before computing the value (`Sender::reserve`), closing a oneshot receiver
/// (`Receiver::close`), and a watch sender waiting for its last receiver to go
/// (`Sender::closed`).
@Suite("Reserving, closing, and waiting for the receivers to go")
struct ReserveAndCloseTests {
    @Test("a permit holds a slot: trySend finds the channel full, the permit's send fills the slot without waiting")
    func permitHoldsASlot() throws {
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 1)
        var reserve = sender.reserveFuture()
        guard case .ready(.success(let permit)) = pollFuture(&reserve) else {
            Issue.record("an empty channel did not grant a reservation at once")
            return
        }
        guard case .failure(.full(7)) = sender.trySend(7) else {
            Issue.record("trySend found room although the only slot is reserved")
            return
        }
        try permit.send(1)
        #expect(sendError { () throws(SendError<Int>) in try permit.send(2) }?.value == 2, "a permit sends once")
        var stream = receiver
        #expect(pollNextOnce(&stream) == .ready(1))
    }

    @Test("reservations wait in line with senders, and a permit dropped unused gives its slot to the next in line, waking the receiver that waits for the value")
    func reservationsQueueWithSenders() throws {
        let runtime = try Runtime()
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 1)
        #expect(sender.trySend(0).isSuccess)
        // In line, in this order: a reservation, then a send of 2.
        let permit = runtime.spawn(sender.reserveFuture())
        try runtime.block(on: yields(2))
        let send = runtime.spawn(sender.sendFuture(2))
        try runtime.block(on: yields(2))
        var stream = receiver
        #expect(pollNextOnce(&stream) == .ready(0))  // frees the slot: the reservation gets it
        var slot: SendPermit<Int>? = try #require(try? runtime.guardedBlock(on: permit).get().get())
        let receiverWakes = AtomicCounter()
        #expect(pollNextOnce(&stream, waker: Waker { receiverWakes.increment() }) == .pending,
                "the send waits behind the reservation")
        #expect(slot != nil)
        slot = nil  // dropped unused: the waiting send takes the slot
        #expect(receiverWakes.value == 1, "the send's value is buffered: the waiting receiver is woken")
        #expect(try runtime.guardedBlock(on: send).get().isSuccess)
        #expect(pollNextOnce(&stream) == .ready(2))
    }

    @Test("a pending reservation dropped after it was granted frees its slot")
    func droppedGrantedReservation() throws {
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 1)
        #expect(sender.trySend(0).isSuccess)
        var reserve = sender.reserveFuture()
        #expect(pollFuture(&reserve).isReady == false)
        var stream = receiver
        #expect(pollNextOnce(&stream) == .ready(0))  // grants the reservation's slot
        _ = consume reserve                          // never polled again
        #expect(sender.trySend(3).isSuccess, "the slot of the dropped reservation was not freed")
        #expect(pollNextOnce(&stream) == .ready(3))
    }

    @Test("a reservation that waited and was granted, polled again after it returned its permit, traps instead of granting a second permit for the same slot (the channel would hold one value more than its capacity)")
    func reservePolledAfterItsPermit() async {
        await #expect(processExitsWith: .failure) {
            let (sender, receiver) = boundedChannel(of: Int.self, capacity: 1)
            _ = sender.trySend(0)
            var reserve = sender.reserveFuture()
            _ = pollFuture(&reserve)  // waits: the channel is full
            var stream = receiver
            _ = pollNextOnce(&stream)  // the slot goes to the reservation
            _ = pollFuture(&reserve)  // the permit
            _ = pollFuture(&reserve)
        }
    }

    @Test("a reservation granted at once, polled again, traps too (it reserved a second slot)")
    func reservePolledAgainAfterAnImmediateGrant() async {
        await #expect(processExitsWith: .failure) {
            let (sender, _) = boundedChannel(of: Int.self, capacity: 2)
            var reserve = sender.reserveFuture()
            _ = pollFuture(&reserve)  // the permit, at once
            _ = pollFuture(&reserve)
        }
    }

    @Test("reserving without a receiver fails with ChannelClosed; a permit whose receiver went throws the value back; a permit keeps the stream open until it is used")
    func reserveAndTheReceiverGoing() throws {
        let runtime = try Runtime()
        var (sender, receiver) = boundedChannel(of: Int.self, capacity: 2)
        let permit = try #require(try? runtime.guardedBlock(on: sender.reserveFuture()).get())
        sender = boundedChannel(of: Int.self, capacity: 1).0  // drops the only sender handle
        var stream = receiver
        #expect(pollNextOnce(&stream) == .pending, "the permit still counts as a sender")
        try permit.send(4)
        #expect(pollNextOnce(&stream) == .ready(4))
        #expect(pollNextOnce(&stream) == .ready(nil), "the used permit still kept the stream open")
        #expect(sendError { () throws(SendError<Int>) in try permit.send(6) }?.value == 6, "a permit sends once")
        withExtendedLifetime(permit) {}

        let (lonely, gone) = boundedChannel(of: Int.self, capacity: 1)
        let stranded = try #require(try? runtime.guardedBlock(on: lonely.reserveFuture()).get())
        _ = consume gone
        #expect(try runtime.guardedBlock(on: lonely.reserveFuture()).failure == ChannelClosed())
        #expect(sendError { () throws(SendError<Int>) in try stranded.send(5) }?.value == 5)
        _ = receiver
    }

    @Test("reserve() from async code on a loop: waits for room, then the permit sends")
    func asyncReserve() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let received = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [Int] in
            let (sender, receiver) = boundedChannel(of: Int.self, capacity: 1)
            try await sender.send(1)
            async let permit = sender.reserve()     // waits: the channel is full
            let first = try await receiver.receive()
            try await permit.send(2)
            let second = try await receiver.receive()
            return [first, second].compactMap { $0 }
        })
        #expect(received == [1, 2])
    }

    @Test("a closed oneshot receiver refuses later sends, and still hands over a value sent before")
    func oneshotClose() throws {
        let (sender, receiver) = oneshotChannel(of: Int.self)
        #expect(!sender.isClosed)
        receiver.close()
        #expect(sender.isClosed)
        #expect(sendError { () throws(SendError<Int>) in try sender.send(1) }?.value == 1)
        #expect(receiver.tryReceive() == .failure(ChannelClosed()))
        var future = receiver
        #expect(pollFuture(&future) == .ready(.failure(ChannelClosed())))

        let (early, kept) = oneshotChannel(of: Int.self)
        try early.send(9)
        kept.close()
        #expect(kept.tryReceive() == .success(9))
    }

    @Test("a watch sender's closed() is ready once the last receiver is gone, not before")
    func watchSenderClosed() throws {
        let runtime = try Runtime()
        var (sender, receiver) = watchChannel(initial: 0)
        let second = sender.subscribe()
        let closed = runtime.spawn(sender.closedFuture())
        try runtime.block(on: yields(2))
        receiver = watchChannel(initial: 0).1  // drops one of the two receivers
        try runtime.block(on: yields(2))
        #expect(!closed.isFinished)
        _ = consume second
        try runtime.guardedBlock(on: closed).get()
        _ = receiver
    }

    @Test("a watch sender's async closed() returns once the last receiver is gone")
    func watchSenderClosedAsync() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let (sender, receiver) = watchChannel(initial: 0)
        let returned = Shared(false)
        let waiter = loop.spawn {
            try await sender.closed()
            returned.value = true
        }
        try await Task.sleep(for: .milliseconds(20))
        #expect(!returned.value, "closed() returned while a receiver lived")
        _ = consume receiver
        try await awaitWithin(.seconds(20), waiter)
        #expect(returned.value)
    }

    // MARK: - Closing a multi-producer channel's receiver (Tokio's `Receiver::close`)

    @Test("close() on a channel's receiver: sends after it fail with their values back (trySend, send, an unbounded send, a reservation), what was buffered is still received, then the stream ends; senders and receiver say it is closed")
    func receiverCloseKeepsTheBuffer() throws {
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 4)
        #expect(sender.trySend(1).isSuccess)
        #expect(sender.trySend(2).isSuccess)
        #expect(!sender.isClosed && !receiver.isClosed)
        receiver.close()
        receiver.close()  // again: nothing more
        #expect(sender.isClosed && receiver.isClosed)
        guard case .failure(.closed(3)) = sender.trySend(3) else {
            Issue.record("trySend after close did not hand its value back as closed")
            return
        }
        var send = sender.sendFuture(4)
        guard case .ready(.failure(let error)) = pollFuture(&send) else {
            Issue.record("a send after close did not fail at once")
            return
        }
        #expect(error.value == 4)
        var reserve = sender.reserveFuture()
        guard case .ready(.failure) = pollFuture(&reserve) else {
            Issue.record("a reservation after close did not fail at once")
            return
        }
        var stream = receiver
        #expect(pollNextOnce(&stream) == .ready(1))
        #expect(receiver.tryReceive() == 2)
        #expect(pollNextOnce(&stream) == .ready(nil), "the stream did not end once the buffer was empty, with a sender still alive")
        _ = sender

        let (unbounded, unboundedReceiver) = unboundedChannel(of: Int.self)
        try unbounded.send(5)
        unboundedReceiver.close()
        #expect(sendError { () throws(SendError<Int>) in try unbounded.send(6) }?.value == 6)
        var unboundedStream = unboundedReceiver
        #expect(pollNextOnce(&unboundedStream) == .ready(5))
        #expect(pollNextOnce(&unboundedStream) == .ready(nil))
    }

    @Test("close() wakes what waits: a send waiting for room fails with its value back, a reservation waiting fails, and a receiver waiting on an empty channel sees the end")
    func receiverCloseWakesTheWaiting() throws {
        let runtime = try Runtime()
        let (full, fullReceiver) = boundedChannel(of: Int.self, capacity: 1)
        #expect(full.trySend(0).isSuccess)
        let send = runtime.spawn(full.sendFuture(7))
        let reserve = runtime.spawn(full.reserveFuture())
        try runtime.block(on: yields(2))
        #expect(!send.isFinished && !reserve.isFinished)
        fullReceiver.close()
        guard case .failure(let error) = try runtime.guardedBlock(on: send).get() else {
            Issue.record("the waiting send succeeded after close")
            return
        }
        #expect(error.value == 7)
        #expect(try runtime.guardedBlock(on: reserve).get().failure != nil, "the waiting reservation was granted after close")
        var fullStream = fullReceiver
        #expect(pollNextOnce(&fullStream) == .ready(0), "the buffered value was dropped by close")
        #expect(pollNextOnce(&fullStream) == .ready(nil))

        let (empty, emptyReceiver) = boundedChannel(of: Int.self, capacity: 1)
        let receiving = runtime.spawn(emptyReceiver.fold([Int]()) { $0 + [$1] })
        try runtime.block(on: yields(2))
        #expect(!receiving.isFinished)
        emptyReceiver.close()
        #expect(try runtime.guardedBlock(on: receiving).get() == [], "the waiting receiver was not woken by close")
        _ = empty
    }

    @Test("a permit reserved before close() still sends, and the stream ends only once that permit is used, or dropped")
    func permitReservedBeforeClose() throws {
        let runtime = try Runtime()
        for usesThePermit in [true, false] {
            let (sender, receiver) = boundedChannel(of: Int.self, capacity: 2)
            // The permit is held by `permit` alone, so that setting it to nil drops it.
            var permit: SendPermit<Int>?
            do {
                var reserve = sender.reserveFuture()
                if case .ready(.success(let granted)) = pollFuture(&reserve) { permit = granted }
            }
            try #require(permit != nil, "an empty channel did not grant a reservation at once")
            let receiving = runtime.spawn(receiver.fold([Int]()) { $0 + [$1] })
            receiver.close()
            _ = consume sender
            try runtime.block(on: yields(4))
            #expect(!receiving.isFinished, "the stream ended while a permit reserved before the close could still send")
            if usesThePermit { try permit?.send(9) }
            permit = nil
            #expect(try runtime.guardedBlock(on: receiving).get() == (usesThePermit ? [9] : []))
        }
    }

    @Test("from async code: a consumer closes its channel, drains what the producers had sent, and ends; the producers' sends fail")
    func receiverCloseFromAsyncCode() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let (sender, receiver) = boundedChannel(of: Int.self, capacity: 8)
        for value in 0..<3 { try await sender.send(value) }
        let drained = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [Int] in
            receiver.close()
            var received: [Int] = []
            for try await value in receiver.values { received.append(value) }
            return received
        })
        #expect(drained == [0, 1, 2])
        await #expect(throws: SendError<Int>.self) { try await sender.send(3) }
    }
}
