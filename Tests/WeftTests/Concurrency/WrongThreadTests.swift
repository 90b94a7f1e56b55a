import Testing
import Weft

/// Whether `error` is a `.wrongThread` WeftError.
private func isWrongThread(_ error: (any Error)?) -> Bool {
    (error as? WeftError)?.kind == .wrongThread
}

/// Runs `body`, returning the error it threw, if any.
private func thrownError(_ body: () throws -> Void) -> (any Error)? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// What every poll and synchronous API of a loop-bound stream and listener
/// reports when called on the current thread: one flag per call, true when the
/// call failed with `.wrongThread`.
private func wrongThreadReport(client: TCPStream, server: TCPStream, listener: TCPListener) -> [String: Bool] {
    var report: [String: Bool] = [:]
    report["setNoDelay"] = isWrongThread(thrownError { try client.setNoDelay(true) })
    report["setKeepAlive"] = isWrongThread(thrownError { try client.setKeepAlive(true) })
    report["localAddress"] = isWrongThread(thrownError { _ = try client.localAddress })
    report["peerAddress"] = isWrongThread(thrownError { _ = try server.peerAddress })

    var read: ReadSome = server.readFuture(upTo: 1)
    report["read future"] = isWrongThread(pollOnce(&read).readyFailure())
    var accept: Accept = listener.acceptFuture()
    report["accept future"] = isWrongThread(pollOnce(&accept).readyFailure())
    var incoming = listener.incoming
    if case .ready(.failure(let error)?) = pollNextOnce(&incoming) {
        report["incoming"] = isWrongThread(error)
    } else {
        report["incoming"] = false
    }
    var context = Context(waker: .noop)
    let bytes: [UInt8] = [1, 2, 3]
    let write = bytes.withUnsafeBytes { client.pollWrite(&context, $0) }
    report["pollWrite"] = isWrongThread(write.readyFailure())
    report["pollFlush"] = isWrongThread(client.pollFlush(&context).readyFailure())
    report["pollShutdown"] = isWrongThread(client.pollShutdown(&context).readyFailure())
    var buffer = [UInt8](repeating: 0, count: 8)
    let filled = buffer.withUnsafeMutableBytes { server.pollRead(&context, into: $0) }
    report["pollRead"] = isWrongThread(filled.readyFailure())
    report["pollFillBuffer"] = isWrongThread(server.pollFillBuffer(&context).readyFailure())
    return report
}

extension Poll {
    /// The error of a `.ready(.failure)`, if that is what this is.
    fileprivate func readyFailure<Success, Failure>() -> Failure? where Value == Result<Success, Failure> {
        if case .ready(.failure(let error)) = self { return error }
        return nil
    }
}

extension ConcurrencyBridge {
    /// `TCPStream` and `TCPListener` are Sendable but loop-bound: their poll and
    /// synchronous APIs fail with `.wrongThread` off their loop (no crash), while
    /// their async APIs hop to the loop.
    @Suite("Loop-bound streams used from the wrong thread")
    struct WrongThreadTests {
        @Test("every poll and sync API of a LoopThread's stream and listener fails with .wrongThread off the loop")
        func pollAndSyncAPIsOffTheLoop() async throws {
            try await withConnectedPair { loop, listener, client, server in
                let report = wrongThreadReport(client: client, server: server, listener: listener)
                #expect(report.count == 12)
                for (call, failedWithWrongThread) in report.sorted(by: { $0.key < $1.key }) {
                    #expect(failedWithWrongThread, "\(call) off the loop did not fail with .wrongThread")
                }

                // The same calls on the loop succeed (or are pending), and nothing was broken.
                let onLoop = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [String: Bool] in
                    wrongThreadReport(client: client, server: server, listener: listener)
                })
                #expect(onLoop.values.allSatisfy { !$0 }, "on the loop: \(onLoop.filter { $0.value })")
            }
        }

        @Test("a stream's poll API called from another LoopThread fails with .wrongThread")
        func pollFromAnotherLoop() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let other = try LoopThread()
            defer { other.shutdown() }
            let handlesBefore = try await NetTest.handleBaseline(on: loop)
            let otherHandlesBefore = try await NetTest.handleBaseline(on: other)
            let (listener, client, server) = try await awaitWithin(.seconds(20), loop.spawn { try await connectedPairOnThisLoop() })
            defer { listener.close() }
            let kind = try await awaitWithin(.seconds(20), other.spawn { () async -> WeftError.Kind? in
                var read: ReadSome = server.readFuture(upTo: 1)
                var context = Context(waker: .noop)
                guard case .ready(.failure(let error)) = read.poll(&context) else { return nil }
                return error.kind
            })
            #expect(kind == .wrongThread)
            // value(of:) from the other loop runs the future there, so it fails the same way.
            let awaited = try await awaitWithin(.seconds(20), other.spawn { () async throws -> WeftError.Kind? in
                let result = try await value(of: server.readFuture(upTo: 1) as ReadSome)
                return result.failure?.kind
            })
            #expect(awaited == .wrongThread)
            // The stream's own async API, called from the other loop, hops to the stream's loop.
            let echoed = try await awaitWithin(.seconds(20), other.spawn { () async throws -> [UInt8] in
                try await client.write([5])
                return try await server.read(upTo: 1)
            })
            #expect(echoed == [5])
            client.close()
            server.close()
            listener.close()
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore)
            try await NetTest.expectNothingLeftOpen(on: other, handlesBefore: otherHandlesBefore)
        }

        @Test("the async API of a loop-bound stream works from any thread: it hops to the stream's loop")
        func asyncAPIHopsToTheLoop() async throws {
            try await withConnectedPair { loop, _, client, server in
                // Called from an ordinary task, off the loop.
                let (received, eof) = try await awaitWithin(.seconds(20), Task { () async throws -> ([UInt8], [UInt8]) in
                    try await client.write([1, 2, 3])
                    var received: [UInt8] = []
                    while received.count < 3 { received += try await server.read(upTo: 10) }
                    try await client.shutdown()
                    return (received, try await server.read())
                })
                #expect(received == [1, 2, 3])
                #expect(eof.isEmpty)
                // close() from off the loop is handed to the loop.
                client.close()
                server.close()
                let closed = try await awaitWithin(.seconds(20), loop.spawn { (client.isClosed, server.isClosed) })
                #expect(closed == (true, true))
            }
        }

        @Test("a plain Runtime's stream polled from a foreign thread fails with .wrongThread, and works again on its own thread")
        func runtimeStreamFromForeignThread() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
            let address = try listener.localAddress
            let (connected, accepted) = try runtime.guardedBlock(on: join(TCPStream.connectFuture(to: address), listener.acceptFuture()))
            let client = try connected.get()
            let server = try accepted.get()
            let report = Shared<[String: Bool]>([:])
            let foreign = ForeignThread {
                report.value = wrongThreadReport(client: client, server: server, listener: listener)
            }
            foreign.join()
            #expect(report.value.count == 12)
            #expect(report.value.values.allSatisfy { $0 }, "not .wrongThread: \(report.value.filter { !$0.value })")
            // The owning thread (the runtime is not running) may still use them.
            try client.setNoDelay(true)
            #expect(try client.localAddress == server.peerAddress)
            let echoed = try runtime.guardedBlock(on: client.writeAll([4, 2]).then { _ in server.readFuture(upTo: 2) })
            #expect(try echoed.get() == [4, 2])

            client.close()
            server.close()
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("a Runtime's stream, listener and UDP socket used inside another runtime's block(on:) on the same thread fail with .wrongThread (a receive there waited for ever: its waker went to the first loop, which nobody ran), and work again on their own runtime")
        func runtimeHandlesInsideAnotherRuntime() throws {
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let other = try Runtime()
            let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
            let address = try listener.localAddress
            let (connected, accepted) = try runtime.guardedBlock(on: join(TCPStream.connectFuture(to: address), listener.acceptFuture()))
            let client = try connected.get()
            let server = try accepted.get()
            let report = try other.block(on: pollFn { (_: inout Context) -> Poll<[String: Bool]> in
                .ready(wrongThreadReport(client: client, server: server, listener: listener))
            })
            #expect(report.count == 12)
            #expect(report.values.allSatisfy { $0 }, "not .wrongThread: \(report.filter { !$0.value })")

            let socket = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
            let sender = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
            try runtime.guardedBlock(on: sender.sendFuture([7], to: try socket.localAddress)).get()
            let received = try other.block(on: timeoutFuture(.seconds(2), socket.receiveFuture()))
            #expect((try? received.get())?.failure?.kind == .wrongThread, "\(received)")
            let datagram = try runtime.guardedBlock(on: timeoutFuture(.seconds(5), socket.receiveFuture())).get().get()
            #expect(datagram.bytes == [7])

            for stream in [client, server] { stream.close() }
            listener.close()
            socket.close()
            sender.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }

        @Test("a request started on one runtime (blocking work, a name lookup, a file status, a connect) and then polled inside another runtime's block(on:) fails with .wrongThread, naming it (it waited on the first loop, which nobody ran)")
        func requestsPolledOnAnotherRuntime() throws {
            let first = try Runtime()
            let second = try Runtime()
            let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"), runtime: first)
            let address = try listener.localAddress
            let blocking = Box(spawnBlocking { 42 })
            let lookup = Box(resolveFuture(host: "localhost", port: 80))
            let status = Box(FileSystem.statusFuture(of: "/"))
            let connect = Box(TCPStream.connectFuture(to: address))
            // Each polled once on the first runtime: started there.
            try first.block(on: pollFn { (context: inout Context) -> Poll<Void> in
                _ = blocking.value.poll(&context)
                _ = lookup.value.poll(&context)
                _ = status.value.poll(&context)
                _ = connect.value.poll(&context)
                return .ready(())
            })
            func onSecond<T>(_ poll: @escaping (inout Context) -> Poll<Result<T, WeftError>>) throws -> WeftError? {
                try second.block(on: timeoutFuture(.seconds(2), pollFn(poll))).get().failure
            }
            let errors: [String: WeftError?] = [
                "spawnBlocking": try onSecond { blocking.value.poll(&$0) },
                "resolve localhost:80": try onSecond { lookup.value.poll(&$0) },
                "stat /": try onSecond { status.value.poll(&$0) },
                "connect \(address)": try onSecond { connect.value.poll(&$0) },
            ]
            for (operation, error) in errors {
                #expect(error?.kind == .wrongThread, "\(operation): \(String(describing: error))")
                #expect(error?.operation == operation)
            }
            listener.close()
        }

        @Test("connect(toAny:) polled on another runtime than its attempts' fails with .wrongThread, as a single connect does (it took it for the address's failure: it reported the first address's refusal, the second's connection dropped)")
        func connectToAnyPolledOnAnotherRuntime() throws {
            let first = try Runtime()
            let second = try Runtime()
            let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"), runtime: first)
            let refusing = try RawSocket.bound()
            defer { refusing.close() }
            let any = Box(TCPStream.connectFuture(toAny: [try SocketAddress(host: "127.0.0.1", port: refusing.port), try listener.localAddress]))
            func pollOnFirst() throws {
                try first.block(on: pollFn { (context: inout Context) -> Poll<Void> in
                    _ = any.value.poll(&context)
                    return .ready(())
                })
                try first.block(on: sleepFuture(for: .milliseconds(50)))
            }
            try pollOnFirst()  // the first address refuses
            try pollOnFirst()  // the second connects, on the first runtime
            let error = try second.block(on: timeoutFuture(.seconds(2), pollFn { any.value.poll(&$0) })).get().failure
            #expect(error?.kind == .wrongThread, "\(String(describing: error))")
            listener.close()
        }

        @Test("binding a listener off any loop without a runtime is an invalid-argument error, not a crash")
        func bindWithoutRuntime() {
            #expect {
                _ = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
            } throws: { error in
                (error as? WeftError)?.kind == .invalidArgument
            }
        }
    }

    @Test("a listener's local address, fixed at bind, can be read from any thread")
    func listenerAddressFromAnyThread() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let (listener, onLoop) = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> (TCPListener, SocketAddress) in
            let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
            return (listener, try listener.localAddress)
        })
        #expect(loop.serialExecutor.isIsolatingCurrentContext() != true)
        let offLoop = try listener.localAddress
        #expect(offLoop == onLoop)
        #expect(offLoop.port != 0)
        let client = try await TCPStream.connect(to: offLoop)
        client.close()
        listener.close()
    }
}
