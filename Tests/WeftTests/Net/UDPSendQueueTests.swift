@testable import Weft
import Testing

/// The queued send path (`uv_udp_send` after the kernel's `EAGAIN`), which
/// loopback never takes by itself: the endpoint's test hook skips
/// `uv_udp_try_send` so every send is queued.
@Suite("UDP send queue")
struct UDPSendQueueTests {
    /// Polls `base` and records the most bytes the endpoint held queued after any poll.
    struct Watching<Base: Future>: Future {
        var base: Base
        let endpoint: DatagramEndpoint
        let highest: NetTest.Cell<Int>

        mutating func poll(_ context: inout Context) -> Poll<Base.Output> {
            let result = base.poll(&context)
            highest.value = max(highest.value, endpoint.queuedSendBytes)
            return result
        }
    }

    @Test("with every send queued, 50 concurrent sends of 1,000 bytes under a 1,024-byte sendQueueLimit wait their turn (never more than one queued), all succeed, and all 50 arrive")
    func queuedSendsWaitForRoom() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), options: .init(receiveQueueLimit: 64), runtime: runtime)
        let sender = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), options: .init(sendQueueLimit: 1024), runtime: runtime)
        sender.endpoint.queuesEverySend = true
        let address = try receiver.localAddress
        let highest = NetTest.Cell(0)
        let sends = joinAll((0..<50).map { index in sender.sendFuture([UInt8](repeating: UInt8(index), count: 1000), to: address) })
        let results = try runtime.block(on: timeoutFuture(.seconds(30), Watching(base: sends, endpoint: sender.endpoint, highest: highest))).get()
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        #expect(highest.value == 1000, "queued at most one datagram at a time; saw \(highest.value) bytes")
        #expect(sender.endpoint.queuedSendBytes == 0)
        var seen = Set<UInt8>()
        for _ in 0..<50 {
            let datagram = try runtime.block(on: timeoutFuture(.seconds(10), receiver.receiveFuture())).get().get()
            #expect(datagram.bytes.count == 1000)
            seen.insert(datagram.bytes[0])
        }
        #expect(seen.count == 50)
        receiver.close()
        sender.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("with every send queued, 1,100 concurrent empty datagrams under a 1,024-byte sendQueueLimit wait too: each counts as a byte, so the queue fills to 1,024 and no further, and every send succeeds")
    func emptyDatagramsWaitForRoom() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let sender = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), options: .init(sendQueueLimit: 1024), runtime: runtime)
        sender.endpoint.queuesEverySend = true
        let address = try receiver.localAddress
        let highest = NetTest.Cell(0)
        // Nobody receives: the kernel may drop some, as UDP allows; what is
        // measured is the sender's queue.
        let sends = joinAll((0..<1_100).map { _ in sender.sendFuture([], to: address) })
        let results = try runtime.block(on: timeoutFuture(.seconds(30), Watching(base: sends, endpoint: sender.endpoint, highest: highest))).get()
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        #expect(highest.value == 1024, "\(highest.value) empty datagrams counted queued at once under a 1,024-byte limit")
        #expect(sender.endpoint.queuedSendBytes == 0)
        for socket in [receiver, sender] { socket.close() }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    // Before the fix that came with this test, the datagrams waiting in
    // libuv's queue went out together (sendmmsg), and one the kernel refused
    // first in a batch failed the whole batch with its error: the datagram
    // to the good address behind it failed with EACCES and never left.
    @Test("with every send queued, a datagram the kernel refuses (broadcast without SO_BROADCAST) fails alone: the sends queued around it succeed and arrive",
          .enabled(if: UDPTests.hasLoopbackBroadcast, "skipped: 127.255.255.255 is not a broadcast address on this machine"))
    func refusedDatagramFailsAlone() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let sender = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        sender.endpoint.queuesEverySend = true
        let good = try receiver.localAddress
        let refused = try SocketAddress(host: "127.255.255.255", port: good.port)
        let results = try runtime.block(on: timeoutFuture(.seconds(10), joinAll([
            sender.sendFuture([1], to: good), sender.sendFuture([2], to: refused),
            sender.sendFuture([3], to: good), sender.sendFuture([4], to: good),
        ]))).get()
        #expect(results[1].failure?.name == "EACCES", "\(results[1])")
        for index in [0, 2, 3] {
            #expect((try? results[index].get()) != nil, "send \(index + 1): \(results[index])")
        }
        var arrived: [UInt8] = []
        for _ in 0..<3 {
            guard case .success(let datagram) = try runtime.block(on: timeoutFuture(.seconds(2), receiver.receiveFuture())) else { break }
            arrived += try datagram.get().bytes
        }
        #expect(arrived == [1, 3, 4])
        for socket in [receiver, sender] { socket.close() }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("closing a socket while a send waits for room in the queue fails that send with .closed naming it; the send libuv already took completes; nothing is left open")
    func closeFailsQueuedSends() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let sender = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), options: .init(sendQueueLimit: 1024), runtime: runtime)
        sender.endpoint.queuesEverySend = true
        let address = try receiver.localAddress
        // The first send goes to uv_udp_send, which writes it at once (its callback
        // comes later); the second waits for room; the close ends the wait.
        var first = sender.sendFuture([UInt8](repeating: 1, count: 1000), to: address)
        var second = sender.sendFuture([UInt8](repeating: 2, count: 1000), to: address)
        var context = Context(waker: .noop)
        var firstPending = false
        var secondPending = false
        if case .pending = first.poll(&context) { firstPending = true }
        if case .pending = second.poll(&context) { secondPending = true }
        #expect(firstPending, "the first send should be queued, waiting for its callback")
        #expect(secondPending, "the second send should wait for room")
        sender.close()
        let outcomes = try runtime.block(on: timeoutFuture(.seconds(10), join(first, second))).get()
        #expect((try? outcomes.0.get()) != nil, "the datagram libuv took is reported sent: \(outcomes.0)")
        #expect(outcomes.1.failure?.kind == .closed)
        #expect(outcomes.1.failure?.operation == "send to \(address)")
        receiver.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("closing a socket while queued datagrams wait for libuv (it holds one at a time) fails each of them with .closed; the one libuv held completes; the queue's count goes back to 0 and nothing is left open")
    func closeFailsDatagramsWaitingForLibuv() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let sender = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        sender.endpoint.queuesEverySend = true
        let address = try receiver.localAddress
        var sends = (0..<3).map { index in sender.sendFuture([UInt8(index)], to: address) }
        var context = Context(waker: .noop)
        for index in sends.indices {
            guard case .pending = sends[index].poll(&context) else {
                Issue.record("send \(index) was not queued")
                return
            }
        }
        #expect(sender.endpoint.queuedSendBytes == 3)
        sender.close()
        let outcomes = try runtime.block(on: timeoutFuture(.seconds(10), joinAll(sends))).get()
        #expect((try? outcomes[0].get()) != nil, "the datagram libuv held: \(outcomes[0])")
        for outcome in outcomes.dropFirst() {
            #expect(outcome.failure?.kind == .closed, "\(outcome)")
        }
        #expect(sender.endpoint.queuedSendBytes == 0)
        receiver.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("connect and disconnect are refused (EBUSY) while sends wait in the queue: queued without an address, a send to the first peer went to the next one, reported sent")
    func reconnectWithSendsQueued() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let first = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let second = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let client = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        client.endpoint.queuesEverySend = true
        try client.connect(to: try first.localAddress)
        var send = client.sendFuture([2])
        var context = Context(waker: .noop)
        var pending = false
        if case .pending = send.poll(&context) { pending = true }
        #expect(pending, "the send should be queued, waiting for its callback")
        #expect(client.endpoint.queuedSendBytes > 0)
        #expect(throws: WeftError.self) { try client.disconnect() }
        #expect(throws: WeftError.self) { try client.connect(to: try second.localAddress) }
        #expect((try? runtime.block(on: timeoutFuture(.seconds(10), send)).get().get()) != nil)
        let received = try runtime.block(on: timeoutFuture(.seconds(10), first.receiveFuture())).get().get()
        #expect(received.bytes == [2])
        try client.disconnect()  // nothing queued any more
        try client.connect(to: try second.localAddress)
        for socket in [first, second, client] { socket.close() }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("connect and disconnect on a socket closed while libuv still held a send fail with .closed, not EBUSY")
    func connectAfterCloseWithAHeldSend() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let client = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        client.endpoint.queuesEverySend = true
        let address = try receiver.localAddress
        var send = client.sendFuture([1], to: address)
        var context = Context(waker: .noop)
        var pending = false
        if case .pending = send.poll(&context) { pending = true }
        try #require(pending, "the send should be queued, waiting for its callback")
        client.close()
        #expect(client.endpoint.queuedSendBytes > 0, "libuv's close callback has not run: the held send still counts")
        let connectError = try #require(throws: WeftError.self) { try client.connect(to: address) }
        #expect(connectError.kind == .closed, "\(connectError)")
        let disconnectError = try #require(throws: WeftError.self) { try client.disconnect() }
        #expect(disconnectError.kind == .closed, "\(disconnectError)")
        _ = try runtime.block(on: timeoutFuture(.seconds(10), send))
        receiver.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("after connect, datagrams another sender sent before it, and not yet received, are not received: they were handed out after the connect")
    func connectDropsQueuedStrangers() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let server = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let stranger = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let client = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let clientAddress = try client.localAddress
        try runtime.block(on: timeoutFuture(.seconds(10), server.sendFuture([1], to: clientAddress))).get().get()
        _ = try runtime.block(on: timeoutFuture(.seconds(10), client.receiveFuture())).get().get()  // receiving is on
        try runtime.block(on: timeoutFuture(.seconds(10), stranger.sendFuture([9], to: clientAddress))).get().get()
        try runtime.block(on: timeoutFuture(.seconds(10), server.sendFuture([3], to: clientAddress))).get().get()
        // Both queued in Weft: waits for them (up to 10 s) rather than for a
        // fixed time a loaded machine may not deliver them in.
        let queuedBy = ContinuousClock.now + .seconds(10)
        while client.endpoint.queuedDatagramCount < 2, ContinuousClock.now < queuedBy {
            try runtime.block(on: sleepFuture(for: .milliseconds(2)))
        }
        #expect(client.endpoint.queuedDatagramCount == 2)
        try client.connect(to: try server.localAddress)
        #expect(client.endpoint.queuedDatagramCount == 1)
        let next = try runtime.block(on: timeoutFuture(.seconds(10), client.receiveFuture())).get().get()
        #expect(next.bytes == [3], "got \(next.bytes) from \(String(describing: next.sender))")
        for socket in [server, stranger, client] { socket.close() }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}

