import Testing
@testable import Weft

/// What a channel's buffer keeps once its receiver caught up.
@Suite("Channel memory after a burst")
struct ChannelMemoryTests {
    @Test("a channel drained after a burst gives back the storage the burst made its buffer grow to (it kept a million slots for good); one filled and drained a little at a time keeps its size")
    func drainedChannelShrinks() throws {
        let runtime = try Runtime()
        let (sender, receiver) = unboundedChannel(of: Int.self)
        let capacity = { receiver.lifetime.shared.state.withLock { $0.buffer.capacity } }
        for value in 0..<(1 << 20) { try sender.send(value) }
        #expect(capacity() >= 1 << 20)
        let drained = Box(0)
        try runtime.block(on: pollFn { (context: inout Context) -> Poll<Void> in
            var stream = receiver
            while case .ready(_?) = stream.pollNext(&context) { drained.value += 1 }
            // Pending: out of budget (woken to go on), or empty at last.
            return drained.value == 1 << 20 ? .ready(()) : .pending
        })
        #expect(receiver.tryReceive() == nil)  // a receive that finds it empty
        #expect(capacity() <= 16, "\(capacity()) slots kept")
        for value in 0..<512 { try sender.send(value) }
        let grown = capacity()
        #expect(try runtime.block(on: receiver.next(many: 1_000)).count == 512)
        #expect(capacity() == grown, "a buffer under 64 times its first size is kept")
    }
}
