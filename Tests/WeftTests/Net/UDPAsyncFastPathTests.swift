import Testing
import Weft

/// The async `send(_:to:)` and `receive(into:)` on their own loop finish at
/// once when they can (no future, no await): the kernel's refusal still
/// surfaces, and a receiver that always finds a datagram still yields.
@Suite("UDP async fast paths")
struct UDPAsyncFastPathTests {
    static func loopback() throws -> SocketAddress { try SocketAddress("127.0.0.1:0") }

    @Test("an async send(_:to:) that the kernel refuses at once (EISCONN: an address on a connected socket) throws that error naming the address")
    func refusedAtOnce() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let (error, target) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> (WeftError?, SocketAddress) in
            let server = try UDPSocket.bind(Self.loopback())
            let client = try UDPSocket.bind(Self.loopback())
            defer {
                server.close()
                client.close()
            }
            let target = try server.localAddress
            try client.connect(to: target)
            let buffer = [UInt8](repeating: 3, count: 4)
            do {
                try await client.send(buffer[..<2], to: target)
                return (nil, target)
            } catch let error as WeftError {
                return (error, target)
            }
        })
        #expect(error?.name == "EISCONN")
        #expect(error?.operation == "send to \(target)")
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }

    @Test("a task whose receive(into:) finds a datagram queued 300 times in a row still yields: another task on the loop runs before it has taken them all")
    func queuedReceivesYield() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let takenWhenOtherRan = Shared<Int?>(nil)
        let taken = try await awaitWithin(.seconds(30), loop.spawn { () async throws -> Int in
            let socket = try UDPSocket.bind(Self.loopback(), options: .init(receiveBufferSize: 4 << 20, receiveQueueLimit: 1024))
            defer { socket.close() }
            let address = try socket.localAddress
            var buffer = [UInt8](repeating: 0, count: 16)
            try await socket.send([0], to: address)
            _ = try await socket.receive(into: &buffer)  // receiving is on from here
            for number in 1...300 { try await socket.send([UInt8(truncatingIfNeeded: number)], to: address) }
            var waits = 0
            while try socket.queuedDatagramCount < 300 && waits < 500 {
                try await Weft.sleep(for: .milliseconds(10))
                waits += 1
            }
            guard try socket.queuedDatagramCount == 300 else { throw NetTest.mismatch("only \(try socket.queuedDatagramCount) queued") }
            let count = Shared(0)
            // Queued behind this task: it runs only if the receiver yields.
            let other = loop.spawn { takenWhenOtherRan.update { $0 = count.value } }
            for _ in 0..<300 {
                _ = try await socket.receive(into: &buffer)
                count.update { $0 += 1 }
            }
            try await other.value
            return count.value
        })
        #expect(taken == 300)
        let seen = try #require(takenWhenOtherRan.value)
        #expect(seen < 300)
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }
}
