import Testing
@testable import Weft

extension ConcurrencyBridge {
    /// The async sequences' `next(isolation:)` and `serve`'s handler type: an
    /// iteration runs where its caller does (an actor, off the loop or pinned
    /// to it), and a handler of the old `@Sendable async` type still converts.
    @Suite("Iterating on the caller's executor")
    struct IsolatedIterationTests {
        @Test("listener.connections iterated inside an actor off the loop: every connection reaches the actor, and the sequence ends when the listener closes")
        func connectionsInAnActorOffTheLoop() async throws {
            // A default actor's code may go on running on the loop's thread
            // after an element arrives (Swift's runtime takes a default actor
            // on the thread where its task resumed; every Weft async call from
            // such an actor does the same), so only what it accepts is checked.
            let (accepted, _) = try await acceptFourClients { _ in Acceptor() }
            #expect(accepted == 4)
        }

        @Test("a default actor off the loop awaits two reads of a stream: the second, begun on the loop's thread where the first left the actor, is polled on the loop after its wake (it failed with wrongThread)")
        func defaultActorAwaitsTwice() async throws {
            try await withConnectedPair { loop, _, client, server in
                let firstRead = Shared(false)
                let reading = Task { try await TwoReads().run(server) { firstRead.value = true } }
                try await awaitWithin(.seconds(20), loop.spawn {
                    try await client.write([1])
                    // The second byte only once the first was read, while the second read waits.
                    while !firstRead.value { try await Weft.sleep(for: .milliseconds(1)) }
                    try await Weft.sleep(for: .milliseconds(50))
                    try await client.write([2])
                })
                #expect(try await awaitWithin(.seconds(20), reading) == [1, 2])
            }
        }

        @Test("a task spawned on the loop, waiting on a channel inside a default actor, gets its value when the wake comes while another task holds the actor (it resumed on the actor's executor, off the loop, and threw CancellationError though nobody cancelled it)")
        func spawnedTaskWokenInsideABusyActor() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let (sender, receiver) = unboundedChannel(of: Int.self)
            let shared = BusyActor()
            let waiting = loop.spawn { try await shared.receive(receiver) }
            try await Task.sleep(for: .milliseconds(50))  // suspended inside the actor, which is free
            let holder = Task.detached { await shared.spin(for: .milliseconds(300)) }
            try await Task.sleep(for: .milliseconds(50))  // the actor is held
            try sender.send(7)
            await holder.value
            let received = await outcome { try await awaitWithin(.seconds(5), waiting) }
            #expect((try? received.get()) == .some(7), "\(received)")
        }

        @Test("listener.connections iterated inside an actor pinned to the loop: every connection reaches the actor's code on the loop thread")
        func connectionsInAnActorOnTheLoop() async throws {
            let (accepted, offLoopThread) = try await acceptFourClients { loop in PinnedAcceptor(loop: loop) }
            #expect(accepted == 4)
            #expect(offLoopThread == 0, "\(offLoopThread) of the pinned actor's turns ran off the loop thread")
        }

        @Test("a stream of results as an AsyncSequence yields the successes, throws the first failure with its kind and operation, and then ends")
        func resultsEndAfterTheFirstFailure() async throws {
            let failure = WeftError(.invalidArgument, operation: "accept", detail: "a test failure")
            let results: [Result<Int, WeftError>] = [.success(1), .success(2), .failure(failure), .success(4)]
            let sequence = PollStreamResults(values: PollStreamValues(base: iter(results), loop: nil), operation: "accept")
            var iterator = sequence.makeAsyncIterator()
            #expect(try await iterator.next() == 1)
            #expect(try await iterator.next() == 2)
            do {
                _ = try await iterator.next()
                Issue.record("the failure was not thrown")
            } catch let error as WeftError {
                #expect(error.kind == .invalidArgument && error.operation == "accept")
            }
            #expect(try await iterator.next() == nil, "the sequence goes on after its error")

            var all: [Int] = []
            for try await value in PollStreamResults(values: PollStreamValues(base: iter([Result<Int, WeftError>.success(5), .success(6)]), loop: nil), operation: "accept") {
                all.append(value)
            }
            #expect(all == [5, 6])
        }

        @Test("serve takes a handler stored as a plain @Sendable async closure (converted to ConnectionHandler) and runs it on a loop of the group")
        func serveConvertsAConcurrentHandler() async throws {
            let group = try LoopGroup(loops: 1)
            defer { group.shutdown() }
            let loop = group.loops[0]
            let handler: @Sendable (TCPStream) async throws -> Void = { connection in
                defer { connection.close() }
                let onLoop = loop.serialExecutor.isIsolatingCurrentContext() == true
                try await connection.write(Array((onLoop ? "on loop" : "off loop").utf8))
            }
            let server = try await group.serve(SocketAddress("127.0.0.1:0"), handler: handler)
            let address = server.localAddress
            let reply = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> String in
                let stream = try await TCPStream.connect(to: address)
                defer { stream.close() }
                return String(decoding: try await value(of: stream.readToEnd()).get(), as: UTF8.self)
            })
            #expect(reply == "on loop")
            await server.close()
        }
    }
}

/// Four clients connect to a listener on a new loop; `makeActor` gives the
/// actor inside which `listener.connections` is iterated (the listener closed
/// after the fourth, the iteration going on to its end). Returns how many
/// connections the iteration saw and how many of them reached the actor's
/// code off the loop's thread; then nothing may be left open on the loop.
private func acceptFourClients(
    in makeActor: (LoopThread) -> any Actor
) async throws -> (accepted: Int, offLoopThread: Int) {
    let loop = try LoopThread()
    defer { loop.shutdown() }
    let handlesBefore = try await NetTest.handleBaseline(on: loop)
    let (listener, address) = try await NetTest.bindLoopback(on: loop)
    let clients = (0..<4).map { _ in loop.spawn { try await TCPStream.connect(to: address) } }
    let actor = makeActor(loop)
    let counts = try await awaitWithin(.seconds(20), Task {
        try await acceptUntilClosed(listener, closingAfter: clients.count, loop: loop, isolation: actor)
    })
    for client in clients { try await awaitWithin(.seconds(20), client).close() }
    try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore)
    return counts
}

/// Iterates `listener.connections` isolated to `actor`, closing each
/// connection, and the listener after `count`; returns how many it saw, and
/// on how many of them it ran off `loop`'s thread.
private func acceptUntilClosed(
    _ listener: TCPListener, closingAfter count: Int, loop: LoopThread, isolation actor: isolated any Actor
) async throws -> (accepted: Int, offLoopThread: Int) {
    var accepted = 0
    var offLoopThread = 0
    for try await connection in listener.connections {
        if loop.serialExecutor.isIsolatingCurrentContext() != true { offLoopThread += 1 }
        accepted += 1
        connection.close()
        if accepted == count { listener.close() }
    }
    return (accepted, offLoopThread)
}

/// A default actor (off every loop).
private actor Acceptor {}

/// An actor pinned to `loop`.
private actor PinnedAcceptor {
    let loop: LoopThread
    init(loop: LoopThread) { self.loop = loop }
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.serialExecutor.asUnownedSerialExecutor() }
}

/// A default actor (not pinned to a loop) that reads a stream twice.
private actor TwoReads {
    func run(_ stream: TCPStream, afterFirstRead: @Sendable () -> Void) async throws -> [UInt8] {
        let first = try await stream.read()
        afterFirstRead()
        let second = try await stream.read()
        return first + second
    }
}

/// A default actor a spawned task waits in while another task spins in it.
private actor BusyActor {
    func receive(_ receiver: ChannelReceiver<Int>) async throws -> Int? {
        try await receiver.receive()
    }

    func spin(for duration: Duration) {
        let end = ContinuousClock.now + duration
        while ContinuousClock.now < end {}
    }
}

extension ConcurrencyBridge.IsolatedIterationTests {
    /// An iterator moved between tasks (not `Sendable` in general: a test's box).
    final class IteratorBox<Iterator: AsyncIteratorProtocol>: @unchecked Sendable {
        var iterator: Iterator
        init(_ iterator: Iterator) { self.iterator = iterator }
    }

    @Test("a stream bound to no loop, iterated from a task of one loop, then from a task of another, is polled on the first loop both times (the second poll ran on the other loop, off the thread of what the first left armed)")
    func plainStreamStaysOnItsFirstLoop() async throws {
        let first = try LoopThread(name: "first")
        let second = try LoopThread(name: "second")
        defer { first.shutdown(); second.shutdown() }
        let polledOnFirst = pollStreamFn { (_: inout Context) -> Poll<Bool?> in
            .ready(first.serialExecutor.isIsolatingCurrentContext() == true)
        }
        let box = IteratorBox(polledOnFirst.values.makeAsyncIterator())
        let fromFirst = try await awaitWithin(.seconds(20), first.spawn { try await box.iterator.next() })
        let fromSecond = try await awaitWithin(.seconds(20), second.spawn { try await box.iterator.next() })
        #expect(fromFirst == true)
        #expect(fromSecond == true, "polled on the second loop")
    }

    @Test("a stream bound to no loop, iterated first off any loop (on the shared loop), then from a task of another loop, is polled on the shared loop both times")
    func plainStreamFirstIteratedOffLoopStaysOnTheSharedLoop() async throws {
        let second = try LoopThread(name: "second")
        defer { second.shutdown() }
        let polledOnShared = pollStreamFn { (_: inout Context) -> Poll<Bool?> in
            .ready(LoopThread.shared.serialExecutor.isIsolatingCurrentContext() == true)
        }
        let box = IteratorBox(polledOnShared.values.makeAsyncIterator())
        let fromHere = try await box.iterator.next()  // a test's task: off any loop
        let fromSecond = try await awaitWithin(.seconds(20), second.spawn { try await box.iterator.next() })
        #expect(fromHere == true)
        #expect(fromSecond == true, "polled on the second loop")
    }
}
