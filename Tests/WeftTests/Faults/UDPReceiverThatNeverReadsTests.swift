import Testing
import Weft

/// A flood of datagrams at a socket whose owner stopped receiving: the kernel
/// drops what it cannot hold, and Weft holds no more than its queue's bound.
@Suite("UDP receiver that never reads")
struct UDPReceiverThatNeverReadsTests {
    @Test("5,000 datagrams at a receiver that took one and then stopped: Weft queues at most receiveQueueLimit (8) and stops reading; the rest wait in or are dropped by the kernel")
    func queueStaysBounded() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let limit = 8
        let receiver = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), options: .init(receiveQueueLimit: limit), runtime: runtime)
        let sender = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let address = try receiver.localAddress
        // One receive starts reading; after it, nobody receives again.
        let first = try runtime.block(on: timeoutFuture(.seconds(10), join(sender.sendFuture([0], to: address), receiver.receiveFuture()))).get()
        try first.0.get()
        #expect(try first.1.get().bytes == [0])
        let payload = [UInt8](repeating: 1, count: 1000)
        var highest = 0
        for _ in 0..<5_000 {
            try runtime.block(on: timeoutFuture(.seconds(10), sender.sendFuture(payload, to: address))).get().get()
            highest = max(highest, try receiver.queuedDatagramCount)
        }
        // Let the loop deliver whatever the kernel still holds.
        try runtime.block(on: sleepFuture(for: .milliseconds(50)))
        highest = max(highest, try receiver.queuedDatagramCount)
        #expect(highest <= limit, "Weft held \(highest) datagrams, over its bound of \(limit)")
        #expect(try receiver.queuedDatagramCount == limit, "the queue should have filled to its bound")
        #expect(try receiver.isReceiving == false, "reading must stop while the queue is full")
        // Receiving again drains the queue and reads on.
        for _ in 0..<limit {
            #expect(try runtime.block(on: timeoutFuture(.seconds(10), receiver.receiveFuture())).get().get().bytes == payload)
        }
        receiver.close()
        sender.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    // Loopback hands each datagram straight to the receiver's buffer (or drops
    // it there), so `uv_udp_try_send` never meets EAGAIN here and the queued
    // path is not reached (UDPSendQueueTests forces it); what this shows is that
    // no send is lost on Weft's side or reported as failed when the receiver's
    // buffer overflows.
    @Test("2,000 concurrent sends of 60 KiB through a 4 KiB send buffer to a receiver that does not read: every send completes successfully")
    func sendsWaitForRoom() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), options: .init(receiveQueueLimit: 4), runtime: runtime)
        let sender = try UDPSocket.bind(SocketAddress("127.0.0.1:0"),
                                        options: .init(sendBufferSize: 4096, sendQueueLimit: 1024), runtime: runtime)
        let address = try receiver.localAddress
        let payload = [UInt8](repeating: 2, count: 60 * 1024)
        let sends = joinAll((0..<2_000).map { _ in sender.sendFuture(payload, to: address) })
        let results = try runtime.block(on: timeoutFuture(.seconds(60), sends)).get()
        #expect(results.allSatisfy { (try? $0.get()) != nil }, "\(results.filter { (try? $0.get()) == nil }.count) sends failed")
        receiver.close()
        sender.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
