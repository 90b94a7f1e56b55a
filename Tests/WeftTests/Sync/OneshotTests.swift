import Testing
import Weft

@Suite("Oneshot channel")
struct SyncOneshotTests {
    @Test("a oneshot receiver gets the value sent from another task")
    func deliversValue() throws {
        let runtime = try Runtime()
        let (sender, receiver) = oneshotChannel(of: Int.self)
        runtime.spawn(yields(3).map { _ = sender.send(42) })
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
        guard case .failure(let error) = sender.send("kept") else {
            Issue.record("send succeeded without a receiver")
            return
        }
        #expect(error.value == "kept")
    }

    @Test("only the first oneshot send delivers")
    func secondSendFails() throws {
        let (sender, receiver) = oneshotChannel(of: Int.self)
        #expect(sender.send(1).isSuccess)
        #expect(sender.send(2).failure?.value == 2)
        var future = receiver
        #expect(pollFuture(&future) == .ready(.success(1)))
    }

    @Test("a oneshot sent from a foreign thread wakes the loop")
    func foreignSend() throws {
        let runtime = try Runtime()
        let (sender, receiver) = oneshotChannel(of: Int.self)
        let thread = ForeignThread { _ = sender.send(7) }
        defer { thread.join() }
        #expect(try runtime.guardedBlock(on: receiver) == .success(7))
    }

    @Test("oneshot receive works from async code")
    func asyncReceive() throws {
        let runtime = try Runtime()
        let (sender, receiver) = oneshotChannel(of: Int.self)
        let result = try runtime.guardedBlock(on: AsyncFuture {
            async let received = try? receiver.receive()
            _ = sender.send(5)
            return await received
        })
        #expect(result == .success(5))
    }
}
