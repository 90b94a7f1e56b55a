import Testing
import Weft

@Suite("TCP listener")
struct ListenerTests {
    @Test("a listener bound to port 0 reports the port the OS picked")
    func ephemeralPort() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        #expect(address.host == "127.0.0.1")
        #expect(address.family == .ipv4)
        #expect(address.port > 0)

        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("binding a port already in use fails with EADDRINUSE naming the address")
    func addressInUse() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let first = try NetTest.bindLoopback(runtime)
        let taken = try first.localAddress

        let error = try #require(throws: WeftError.self) {
            _ = try TCPListener.bind(taken, runtime: runtime)
        }
        #expect(error.name == "EADDRINUSE")
        #expect(error.operation == "bind \(taken)")
        #expect("\(error)".contains("127.0.0.1:\(taken.port)"))
        #expect("\(error)".contains("EADDRINUSE"))
        // The failed listener's handle is closed; the first one still works.
        #expect(runtime.openHandleCount == baseline + 1)
        #expect(try first.localAddress == taken)

        first.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("binding without a runtime outside a task fails with .invalidArgument")
    func bindWithoutRuntime() throws {
        let error = try #require(throws: WeftError.self) {
            _ = try TCPListener.bind(NetTest.loopbackAnyPort())
        }
        #expect(error.kind == .invalidArgument)
    }

    @Test("closing the listener wakes a pending accept with .closed")
    func closeWakesAccept() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        #expect(runtime.openHandleCount == baseline + 1)

        let start = ContinuousClock.now
        let (accepted, _) = try runtime.block(on: timeoutFuture(.seconds(10), join(
            listener.acceptFuture(),
            sleepFuture(for: .milliseconds(20)).map { listener.close() }
        ))).get()
        let error = try #require(accepted.failure, "expected .closed, got \(accepted)")
        #expect(error.kind == .closed)
        #expect(error.operation == "accept")
        #expect(ContinuousClock.now - start >= .milliseconds(20))

        // Accepting again fails at once; the handle is gone from the loop.
        let again = try runtime.block(on: listener.acceptFuture())
        #expect(again.failure?.kind == .closed)
        #expect(runtime.openHandleCount == baseline)
        #expect(throws: WeftError.self) { _ = try listener.localAddress }
        listener.close()  // idempotent
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("the incoming stream yields connections and ends when the listener is closed")
    func incomingEnds() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        let accepted = NetTest.Cell(0)
        let server = runtime.spawn(listener.incoming.fold(0) { count, connection in
            if case .success = connection { accepted.value += 1 }
            return count + 1
        })
        let clients = (0..<3).map { _ in runtime.spawn(TCPStream.connectFuture(to: address)) }
        let connected = try runtime.block(on: timeoutFuture(.seconds(10), joinAll(clients))).get()
        #expect(connected.allSatisfy { (try? $0.get().get()) != nil })
        // Let the server take all three, then close the listener: the stream ends.
        try runtime.block(on: timeoutFuture(.seconds(10), NetTest.eventually { accepted.value == 3 })).get()
        listener.close()
        let total = try runtime.block(on: timeoutFuture(.seconds(10), server)).get()
        #expect(try total.get() == 3)
        #expect(accepted.value == 3)

        for case .success(.success(let client)) in connected { client.close() }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a pending accept future keeps its listener open; dropping the last one closes it")
    func acceptKeepsListener() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var listener: TCPListener? = try NetTest.bindLoopback(runtime)
        #expect(runtime.openHandleCount == baseline + 1)
        // Once `take()` gave our reference up, the accept future is the listener's
        // last owner. Nothing connects, so the timer wins the select and the
        // accept is dropped.
        let winner = try runtime.block(on: select(
            either: listener.take()!.acceptFuture(),
            or: sleepFuture(for: .milliseconds(30)).map { runtime.openHandleCount }
        ))
        #expect(listener == nil)
        #expect(winner.right == baseline + 1, "the listener stayed open while the accept was pending")
        try runtime.block(on: yieldNow())
        #expect(runtime.openHandleCount == baseline, "dropping the last accept future closed the listener")
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    // Before the fix in the same commit, the listener kept one accept waker:
    // each task's pending accept replaced the previous task's waker, and the
    // first task was never woken again however many connections arrived.
    @Test("several tasks waiting in accept() on one listener are each woken and each get a connection")
    func concurrentAccepts() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        let acceptors = (0..<4).map { _ in runtime.spawn(listener.acceptFuture()) }
        try runtime.block(on: yieldNow())  // every acceptor is pending
        let clients = try runtime.block(on: timeoutFuture(.seconds(5), joinAll((0..<4).map { _ in
            TCPStream.connectFuture(to: address)
        }))).get()
        #expect(clients.allSatisfy { $0.isSuccess })
        let accepted = try runtime.block(on: timeoutFuture(.seconds(5), joinAll(acceptors)))
        let streams = try #require(try? accepted.get(), "an acceptor was never woken")
        #expect(streams.allSatisfy { (try? $0.get())?.isSuccess ?? false })

        for case .success(let client) in clients { client.close() }
        for case .success(.success(let server)) in streams { server.close() }
        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
