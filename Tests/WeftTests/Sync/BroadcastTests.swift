import Testing
import Weft

@Suite("Broadcast channel")
struct SyncBroadcastTests {
    @Test("every broadcast receiver sees every message in order")
    func everyReceiverSeesEverything() throws {
        let runtime = try Runtime()
        let (sender, first) = broadcastChannel(of: Int.self, capacity: 8)
        let second = sender.subscribe()
        let a = runtime.spawn(collectAll(first))
        let b = runtime.spawn(collectAll(second))
        runtime.spawn(yields(1).map {
            for value in 1...5 { _ = try? sender.send(value) }
        })
        _ = consume sender
        let (left, right) = try runtime.guardedBlock(on: join(a, b))
        let expected = (1...5).map { BroadcastEvent.message($0) }
        #expect(try left.get() == expected)
        #expect(try right.get() == expected)
    }

    @Test("a lagging broadcast receiver is told how many messages it missed")
    func laggingReceiver() throws {
        let runtime = try Runtime()
        let (sender, receiver) = broadcastChannel(of: Int.self, capacity: 3)
        for value in 0..<10 { #expect((try? sender.send(value)) != nil) }
        _ = consume sender
        let events = try runtime.guardedBlock(on: collectAll(receiver))
        #expect(events == [.lagged(missed: 7), .message(7), .message(8), .message(9)])
    }

    @Test("a broadcast send fails with the value back when no receiver is left")
    func sendWithoutReceivers() {
        let (sender, receiver) = broadcastChannel(of: String.self, capacity: 2)
        #expect(sender.receiverCount == 1)
        _ = consume receiver
        #expect(sender.receiverCount == 0)
        #expect(sendError { () throws(SendError<String>) in try sender.send("lost?") }?.value == "lost?")
    }

    @Test("a receiver subscribed later sees only later messages")
    func lateSubscriber() {
        let (sender, early) = broadcastChannel(of: Int.self, capacity: 4)
        _ = try? sender.send(1)
        var late = sender.subscribe()
        _ = try? sender.send(2)
        var stream = early
        #expect(pollNextOnce(&stream) == .ready(.message(1)))
        #expect(pollNextOnce(&late) == .ready(.message(2)))
        #expect(pollNextOnce(&late) == .pending)
    }

    @Test("dropping a pending broadcast receive loses nothing")
    func droppedReceive() {
        let (sender, receiver) = broadcastChannel(of: Int.self, capacity: 4)
        var next = receiver.next()
        #expect(!pollFuture(&next).isReady)
        _ = consume next
        _ = try? sender.send(1)
        var stream = receiver
        #expect(pollNextOnce(&stream) == .ready(.message(1)))
    }
}
