#if ServiceLifecycle
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import Weft
import WeftServiceLifecycle

/// Echoes until the peer half-closes.
@Sendable func echo(_ stream: TCPStream) async throws {
    while true {
        let bytes = try await stream.read()
        if bytes.isEmpty { break }
        try await stream.write(bytes)
    }
    try await stream.shutdown()
}

/// The address a service reports once it listens.
final class BoundAddress: Sendable {
    let value = Mutex<SocketAddress?>(nil)

    func set(_ address: SocketAddress) { value.withLock { $0 = address } }
}

/// Waits up to 5 s for `address` to be set.
func listening(_ address: BoundAddress) async throws -> SocketAddress {
    for _ in 0..<500 {
        if let bound = address.value.withLock({ $0 }) { return bound }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw WeftError(.stuck, operation: "the service did not listen within 5 s")
}

// The grace periods are long and the bounds on elapsed time loose: the
// steps between a trigger and its check await on Swift's cooperative pool,
// which a loaded run can hold for tens of seconds. A drain that waits out its
// grace period still fails them.
@Suite("WeftServiceLifecycle: a Weft server and its loop group in a ServiceGroup")
struct WeftServiceLifecycleTests {
    @Test("a ServiceGroup serves through the Weft server, and on graceful shutdown the server lets a connection in flight finish, stops listening, and the group's loops shut down")
    func gracefulShutdown() async throws {
        let group = try LoopGroup(loops: 2, name: "lifecycle-test")
        let address = BoundAddress()
        let server = WeftServerService(group: group, address: try SocketAddress("127.0.0.1:0"), gracePeriod: .seconds(600),
                                       onListening: address.set, handler: echo)
        let services = ServiceGroup(services: [LoopGroupService(group), server], logger: Logger(label: "lifecycle-test"))
        let running = Task { try await services.run() }

        let bound = try await listening(address)
        let client = try await TCPStream.connect(to: bound)
        try await client.write([1, 2, 3])
        #expect(try await client.read() == [1, 2, 3])

        // Shut down while the client is still connected: its connection may finish.
        await services.triggerGracefulShutdown()
        try await Task.sleep(for: .milliseconds(100))
        try await client.write([4])
        #expect(try await client.read() == [4], "the connection in flight was cut during the grace period")
        try await client.shutdown()
        #expect(try await client.read().isEmpty)

        try await running.value
        do {
            _ = try await TCPStream.connect(to: bound)
            Issue.record("the port still accepts after the service group ended")
        } catch let error as WeftError {
            #expect(error.code == .connectionRefused, "\(error)")
        }
    }

    @Test("a graceful shutdown waits for a connection accepted and handed to a busy loop whose handler has not started yet")
    func gracefulShutdownWaitsForAHandedOffConnection() async throws {
        let group = try LoopGroup(loops: 2, name: "lifecycle-handoff")
        let address = BoundAddress()
        let server = WeftServerService(group: group, address: try SocketAddress("127.0.0.1:0"), distribution: .handOff,
                                       gracePeriod: .seconds(600), onListening: address.set) { stream in
            // Answers a request: a handler cancelled by the group's shutdown never does.
            defer { stream.close() }
            _ = try await stream.read()
            try await stream.write(Array("hi".utf8))
        }
        let services = ServiceGroup(services: [LoopGroupService(group), server], logger: Logger(label: "lifecycle-test"))
        let running = Task { try await services.run() }
        let bound = try await listening(address)

        // Loop 1's thread is blocked, on purpose, until released.
        let released = Atomic<Bool>(false)
        let blocker = group.loops[1].spawn {
            while !released.load(ordering: .acquiring) { usleep(1_000) }
        }
        // The turns go to loop 0, then to loop 1, where the second connection waits.
        let first = try await TCPStream.connect(to: bound)
        try await first.write([1])
        #expect(try await first.read() == Array("hi".utf8))
        let second = try await TCPStream.connect(to: bound)
        try await Task.sleep(for: .milliseconds(200))  // accepted and handed over meanwhile

        await services.triggerGracefulShutdown()
        try await Task.sleep(for: .milliseconds(300))
        released.store(true, ordering: .releasing)
        _ = await blocker.result
        try await second.write([2])
        #expect(try await second.read() == Array("hi".utf8), "the drain ended before the handed-off connection was served")
        first.close()
        second.close()
        try await running.value
    }

    @Test("a handler sees the graceful shutdown (gracefulShutdown() returns in it), so one that holds its connection until then closes it at once instead of holding the drain for the grace period")
    func handlerSeesGracefulShutdown() async throws {
        let group = try LoopGroup(loops: 1, name: "lifecycle-handler")
        let address = BoundAddress()
        let server = WeftServerService(group: group, address: try SocketAddress("127.0.0.1:0"), gracePeriod: .seconds(3600),
                                       onListening: address.set) { stream in
            defer { stream.close() }
            #expect(!Task.isShuttingDownGracefully)
            try await stream.write([1])
            try await gracefulShutdown()
            #expect(Task.isShuttingDownGracefully)
        }
        let services = ServiceGroup(services: [LoopGroupService(group), server], logger: Logger(label: "lifecycle-test"))
        let running = Task { try await services.run() }
        let client = try await TCPStream.connect(to: try await listening(address))
        #expect(try await client.read() == [1])

        let start = ContinuousClock.now
        await services.triggerGracefulShutdown()
        #expect(try await client.read().isEmpty, "the handler closes the connection when told of the shutdown")
        try await running.value
        #expect(ContinuousClock.now - start < .seconds(600), "the drain waited for the hour-long grace period")
        client.close()
    }

    @Test("cancelling the ServiceGroup stops the server at once, without waiting for the connections in flight")
    func cancellation() async throws {
        let group = try LoopGroup(loops: 1, name: "lifecycle-cancel")
        let address = BoundAddress()
        let server = WeftServerService(group: group, address: try SocketAddress("127.0.0.1:0"), gracePeriod: .seconds(3600),
                                       onListening: address.set, handler: echo)
        let services = ServiceGroup(services: [LoopGroupService(group), server], logger: Logger(label: "lifecycle-test"))
        let running = Task { try await services.run() }
        let bound = try await listening(address)
        let client = try await TCPStream.connect(to: bound)
        try await client.write([9])
        #expect(try await client.read() == [9])

        let start = ContinuousClock.now
        running.cancel()
        _ = await running.result
        #expect(ContinuousClock.now - start < .seconds(600), "cancellation waited for the hour-long grace period")
        client.close()
    }
}
#endif
