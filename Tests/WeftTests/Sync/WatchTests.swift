import Testing
import Weft

@Suite("Watch channel")
struct SyncWatchTests {
    @Test("a watch receiver sees only the latest of several sends")
    func latestOnly() throws {
        let runtime = try Runtime()
        let (sender, receiver) = watchChannel(initial: 0)
        #expect(receiver.current == 0)
        #expect(!receiver.hasChanged)
        for value in 1...3 { #expect((try? sender.send(value)) != nil) }
        var stream = receiver
        #expect(pollNextOnce(&stream) == .ready(3))
        #expect(pollNextOnce(&stream) == .pending)
        _ = consume sender
        #expect(try runtime.guardedBlock(on: collectAll(stream)) == [])
    }

    @Test("changed() waits for a newer value and fails once the sender is gone")
    func changedFuture() throws {
        let runtime = try Runtime()
        let (sender, receiver) = watchChannel(initial: "a")
        runtime.spawn(yields(2).map { try? sender.send("b") })
        #expect(try runtime.guardedBlock(on: receiver.changedFuture()).isSuccess)
        #expect(receiver.current == "b")
        _ = consume sender
        #expect(try runtime.guardedBlock(on: receiver.changedFuture()).failure == ChannelClosed())
    }

    @Test("a watch send fails with the value back when no receiver is left")
    func sendWithoutReceivers() {
        let (sender, receiver) = watchChannel(initial: 1)
        _ = consume receiver
        #expect(sendError { () throws(SendError<Int>) in try sender.send(2) }?.value == 2)
        #expect(sender.current == 1)
    }

    @Test("a watch sent from a foreign thread wakes changed()")
    func foreignSend() throws {
        let runtime = try Runtime()
        let (sender, receiver) = watchChannel(initial: 0)
        let latch = FirstPollLatch()
        let thread = ForeignThread {
            latch.waitForFirstPoll()
            try? sender.send(9)
        }
        defer { thread.join() }
        #expect(try runtime.guardedBlock(on: latch.watching(receiver.changedFuture())).isSuccess)
        #expect(latch.waited, "changed before the first poll: the foreign wake was not tested")
        #expect(receiver.currentMarkingSeen() == 9)
        #expect(!receiver.hasChanged)
    }
}
