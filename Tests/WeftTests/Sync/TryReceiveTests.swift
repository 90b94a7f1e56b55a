import Testing
import Weft

/// What Tokio users look for on the channels: taking without waiting, asking
/// whether the other side is gone, receiving a batch.
@Suite("Receiving without waiting, and in batches")
struct TryReceiveTests {
    @Test("oneshot tryReceive: nil before the send, the value once, then ChannelClosed; ChannelClosed when the sender left without sending")
    func oneshot() {
        let (sender, receiver) = oneshotChannel(of: Int.self)
        #expect(receiver.tryReceive() == nil)
        try? sender.send(5)
        #expect(receiver.tryReceive() == .success(5))
        #expect(receiver.tryReceive() == .failure(ChannelClosed()))

        var (unsent, waiting) = oneshotChannel(of: Int.self)
        #expect(waiting.tryReceive() == nil)
        unsent = oneshotChannel(of: Int.self).0  // drops the only sender of `waiting`
        _ = unsent
        #expect(waiting.tryReceive() == .failure(ChannelClosed()))
    }

    @Test("broadcast tryReceive: nil while nothing is there, each message in order, then the end once the senders are gone")
    func broadcast() {
        var (sender, receiver) = broadcastChannel(of: Int.self, capacity: 4)
        #expect(receiver.tryReceive() == nil)
        _ = try? sender.send(1)
        _ = try? sender.send(2)
        guard case .message(1)?? = receiver.tryReceive(), case .message(2)?? = receiver.tryReceive() else {
            Issue.record("expected messages 1 and 2")
            return
        }
        #expect(receiver.tryReceive() == nil)
        sender = broadcastChannel(of: Int.self, capacity: 1).0  // drops the only sender
        guard case .some(nil) = receiver.tryReceive() else {
            Issue.record("expected the end of the channel")
            return
        }
    }

    @Test("a watch sender tells whether every receiver is gone")
    func watchClosed() {
        var (sender, receiver) = watchChannel(initial: 0)
        #expect(!sender.isClosed)
        receiver = sender.subscribe()
        #expect(!sender.isClosed)
        receiver = watchChannel(initial: 0).1  // drops the last receiver of `sender`
        _ = receiver
        #expect(sender.isClosed)
    }

    @Test("next(many:) waits for the first value, takes what else is buffered up to the limit, and is empty at the end")
    func many() throws {
        let runtime = try Runtime()
        var sender: UnboundedSender<Int>
        let receiver: ChannelReceiver<Int>
        (sender, receiver) = unboundedChannel(of: Int.self)
        for value in 0..<5 { try? sender.send(value) }
        #expect(try runtime.block(on: receiver.next(many: 3)) == [0, 1, 2])
        #expect(try runtime.block(on: receiver.next(many: 10)) == [3, 4])
        try? sender.send(7)
        try? sender.send(8)
        #expect(try runtime.block(on: receiver.next(many: 0)) == [7], "a limit below 1 counts as 1")
        #expect(try runtime.block(on: receiver.next(many: 1)) == [8])
        let waiting = runtime.spawn(receiver.next(many: 2))
        try runtime.block(on: yieldNow())
        #expect(!waiting.isFinished)
        try? sender.send(9)
        #expect(try runtime.block(on: waiting).get() == [9])
        sender = unboundedChannel(of: Int.self).0  // drops the only sender
        #expect(try runtime.block(on: receiver.next(many: 2)) == [])
    }

    @Test("receive(many:) from async code on a loop")
    func manyAsync() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let (sender, receiver) = unboundedChannel(of: Int.self)
        for value in 0..<3 { try? sender.send(value) }
        let batch = try await awaitWithin(.seconds(20), loop.spawn { try await receiver.receive(many: 8) })
        #expect(batch == [0, 1, 2])
    }
}
