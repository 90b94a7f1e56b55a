import Testing
import Weft

/// `receive(into:)` and `receiveFuture(into:)`: a datagram copied into the
/// caller's buffer, truncated to it, and sent back as a slice; datagrams
/// queued past the socket's arena arrive intact.
@Suite("UDP receive into a caller's buffer")
struct UDPReceiveIntoTests {
    static func loopback() throws -> SocketAddress { try SocketAddress("127.0.0.1:0") }

    @Test("receive(into:) writes a datagram at the start of the buffer, keeps the buffer's count and names the sender; a sent slice arrives as exactly that slice")
    func receiveIntoAndSendSlice() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let (receipt, buffer, senderAddress) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> (UDPReceipt, [UInt8], SocketAddress) in
            let receiver = try UDPSocket.bind(Self.loopback())
            let sender = try UDPSocket.bind(Self.loopback())
            defer {
                receiver.close()
                sender.close()
            }
            let message: [UInt8] = [9, 9, 1, 2, 3, 4, 5, 9]
            try await sender.send(message[2..<7], to: try receiver.localAddress)
            var buffer = [UInt8](repeating: 0xEE, count: 32)
            let receipt = try await receiver.receive(into: &buffer)
            return (receipt, buffer, try sender.localAddress)
        })
        #expect(receipt == UDPReceipt(count: 5, sender: senderAddress, isTruncated: false))
        #expect(buffer.count == 32)
        #expect(Array(buffer[..<5]) == [1, 2, 3, 4, 5])
        #expect(buffer[5...].allSatisfy { $0 == 0xEE })
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }

    @Test("a datagram longer than the buffer is cut to the buffer's count and marked truncated; the next one fits whole")
    func bufferTooSmall() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(Self.loopback(), runtime: runtime)
        let sender = try UDPSocket.bind(Self.loopback(), runtime: runtime)
        let address = try receiver.localAddress
        try runtime.block(on: timeoutFuture(.seconds(10), sender.sendFuture([UInt8](0..<100), to: address))).get().get()
        try runtime.block(on: timeoutFuture(.seconds(10), sender.sendFuture([7, 8], to: address))).get().get()
        let first = try runtime.block(on: timeoutFuture(.seconds(10), receiver.receiveFuture(into: [UInt8](repeating: 0, count: 10)))).get()
        #expect(first.buffer == [UInt8](0..<10))
        #expect(try first.receipt.get() == UDPReceipt(count: 10, sender: try sender.localAddress, isTruncated: true))
        let second = try runtime.block(on: timeoutFuture(.seconds(10), receiver.receiveFuture(into: first.buffer))).get()
        #expect(try second.receipt.get().count == 2)
        #expect(try !second.receipt.get().isTruncated)
        #expect(second.buffer.count == 10)
        #expect(Array(second.buffer[..<2]) == [7, 8])
        receiver.close()
        sender.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a datagram longer than maximumDatagramSize is marked truncated in receive(into:) even when the buffer is larger")
    func truncatedByMaximumDatagramSize() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(Self.loopback(), options: .init(maximumDatagramSize: 16), runtime: runtime)
        let sender = try UDPSocket.bind(Self.loopback(), runtime: runtime)
        try runtime.block(on: timeoutFuture(.seconds(10), sender.sendFuture([UInt8](0..<100), to: try receiver.localAddress))).get().get()
        let received = try runtime.block(on: timeoutFuture(.seconds(10), receiver.receiveFuture(into: [UInt8](repeating: 0, count: 64)))).get()
        let receipt = try received.receipt.get()
        #expect(receipt.count == 16)
        #expect(receipt.isTruncated)
        #expect(Array(received.buffer[..<16]) == [UInt8](0..<16))
        receiver.close()
        sender.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("an empty buffer receives a datagram as 0 bytes, marked truncated, and an empty datagram as 0 bytes, not truncated")
    func emptyBuffer() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let receiver = try UDPSocket.bind(Self.loopback(), runtime: runtime)
        let sender = try UDPSocket.bind(Self.loopback(), runtime: runtime)
        let address = try receiver.localAddress
        try runtime.block(on: timeoutFuture(.seconds(10), sender.sendFuture([1], to: address))).get().get()
        try runtime.block(on: timeoutFuture(.seconds(10), sender.sendFuture([], to: address))).get().get()
        let first = try runtime.block(on: timeoutFuture(.seconds(10), receiver.receiveFuture(into: []))).get()
        let second = try runtime.block(on: timeoutFuture(.seconds(10), receiver.receiveFuture(into: []))).get()
        #expect(try first.receipt.get().count == 0)
        #expect(try first.receipt.get().isTruncated)
        #expect(try second.receipt.get().count == 0)
        #expect(try !second.receipt.get().isTruncated)
        receiver.close()
        sender.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("64 queued datagrams of 1,200 bytes, more than the socket's arena holds, each arrive intact and in order through receive(into:) and receive() in turn, and so does one sent after")
    func queuedPastTheArena() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        // A 1,500-byte maximum makes a 16 KiB arena: 13 datagrams of 1,200
        // bytes land there, the rest are copied out of the spare buffer.
        let receiver = try UDPSocket.bind(Self.loopback(), options: .init(maximumDatagramSize: 1500), runtime: runtime)
        let sender = try UDPSocket.bind(Self.loopback(), runtime: runtime)
        let address = try receiver.localAddress
        func payload(_ number: Int) -> [UInt8] {
            (0..<1200).map { UInt8(truncatingIfNeeded: number &* 31 &+ $0) }
        }
        // A receive that times out starts receiving; then all 64 are queued at once.
        _ = try runtime.block(on: timeoutFuture(.milliseconds(20), receiver.receiveFuture()))
        for number in 0..<64 {
            try runtime.block(on: timeoutFuture(.seconds(10), sender.sendFuture(payload(number), to: address))).get().get()
        }
        var waits = 0
        while try receiver.queuedDatagramCount < 64 && waits < 200 {
            _ = try runtime.block(on: sleepFuture(for: .milliseconds(10)))
            waits += 1
        }
        #expect(try receiver.queuedDatagramCount == 64)
        var buffer = [UInt8](repeating: 0, count: 2048)
        for number in 0..<64 {
            if number % 2 == 0 {
                let received = try runtime.block(on: receiver.receiveFuture(into: buffer))
                buffer = received.buffer
                let receipt = try received.receipt.get()
                #expect(receipt.count == 1200 && !receipt.isTruncated)
                #expect(Array(buffer[..<receipt.count]) == payload(number), "datagram \(number)")
            } else {
                let datagram = try runtime.block(on: receiver.receiveFuture()).get()
                #expect(datagram.bytes == payload(number), "datagram \(number)")
            }
        }
        try runtime.block(on: timeoutFuture(.seconds(10), sender.sendFuture(payload(64), to: address))).get().get()
        let last = try runtime.block(on: timeoutFuture(.seconds(10), receiver.receiveFuture(into: buffer))).get()
        #expect(try last.receipt.get().count == 1200)
        #expect(Array(last.buffer[..<1200]) == payload(64))
        receiver.close()
        sender.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a cancelled receive(into:) throws CancellationError, loses no datagram, and leaves a zeroed buffer of the same count")
    func cancelledReceiveInto() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let (bufferAfterCancel, received) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> ([UInt8], [UInt8]) in
            let socket = try UDPSocket.bind(Self.loopback())
            defer { socket.close() }
            let waiting = loop.spawn { () async throws -> [UInt8] in
                var buffer = [UInt8](repeating: 0xAA, count: 8)
                do {
                    _ = try await socket.receive(into: &buffer)
                } catch is CancellationError {
                    return buffer
                }
                throw NetTest.mismatch("the receive was not cancelled")
            }
            try await Weft.sleep(for: .milliseconds(20))
            waiting.cancel()
            let bufferAfterCancel = try await waiting.value
            try await socket.send([5, 6], to: try socket.localAddress)
            var buffer = [UInt8](repeating: 0, count: 8)
            let receipt = try await socket.receive(into: &buffer)
            return (bufferAfterCancel, Array(buffer[..<receipt.count]))
        })
        #expect(bufferAfterCancel == [UInt8](repeating: 0, count: 8))
        #expect(received == [5, 6])
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }
}
