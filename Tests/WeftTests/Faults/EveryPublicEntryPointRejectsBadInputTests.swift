import Dispatch
import Glibc
import Testing
import Weft

/// Invariant 8 ("errors are values"), issue 6 ("Reliability"): bad input to a
/// public entry point comes back as a `WeftError` value, or gets the behaviour
/// its documentation states; it never traps, hangs or is silently taken for
/// something else.
///
/// Covered in this file:
/// - Addresses: a host containing a NUL character, for `SocketAddress(_:)`,
///   `SocketAddress(host:port:)`, `resolveFuture(host:port:)` and
///   `TCPStream.connect(host:port:)`; a port outside 0...65535 (70000, 65536,
///   -1, `Int.max`) for `resolveFuture(host:port:)` and `connect(host:port:)`, which
///   must not wrap around to another port; an empty host for `resolve`; binding
///   an address that is not on this machine (EADDRNOTAVAIL); a listen backlog
///   beyond `Int32`.
/// - Durations: `sleep(for:)` with the largest and the most negative
///   `Duration`; `sleep(until:)` an instant centuries away; `timeout` with a
///   negative, a zero and the largest limit around a pending future;
///   `interval(every:)` with a zero, a negative and an enormous period;
///   `setKeepAlive` with a zero, a negative and an enormous delay.
/// - Lengths: `readExact` of `Int.max` and of 1 TiB; `readToEnd(limit:)` with
///   a zero and a negative limit; `read(upTo: Int.max)`.
/// - Use after close: a closed listener's `localAddress`, async `accept()` and
///   `connections`; a closed stream's split halves and its async `read`,
///   `write` and `shutdown`.
/// - Use after shutdown: `TCPListener.bind` and `SignalStream.install` with a
///   runtime that was shut down.
/// - Signals: `signals(_:)` of numbers that do not exist or cannot be caught.
/// - Wrong thread: `TCPListener.bind` and `SignalStream.install` with a runtime
///   that belongs to another thread; `Runtime.block(on:)` and `shutdown()`
///   called on another thread (a known issue, see the test).
///
/// Covered elsewhere:
/// - Malformed address strings, out-of-range ports and non-numeric hosts for
///   `SocketAddress`: Net/SocketAddressTests.swift.
/// - A backlog of 0 or -1, connecting to port 0, negative lengths for
///   `read(upTo:)` and `readExact`: Net/ArgumentValidationTests.swift.
/// - Binding a port already in use, binding without a runtime, accepting on a
///   closed listener, the `incoming` stream ending at the close, several tasks
///   accepting at once: Net/ListenerTests.swift.
/// - Every poll and synchronous operation of a closed stream:
///   Net/ClosedStreamTests.swift.
/// - Zero and negative sleeps, `sleep(until:)` a past instant, a sleep of
///   `Int64.max / 2` seconds: Time/SleepTests.swift. A zero timeout around a
///   ready future: Time/TimeoutTests.swift.
/// - Every poll and synchronous operation of a stream or listener off its
///   loop, and binding off any loop without a runtime (`.wrongThread`,
///   `.invalidArgument`): Concurrency/WrongThreadTests.swift.
/// - `spawn` and `block(on:)` after shutdown, `shutdown()` from inside a task:
///   Runtime/ShutdownTests.swift; `block(on:)` from inside a task:
///   Runtime/ReentrancyTests.swift.
///
/// Not tested, because they trap by a documented precondition:
/// `TCPStream.consume` and `File.consume` off their loop thread; `spawn(_:)`
/// outside a runtime; polling any future again after it returned `.ready` (the
/// `Future` contract), including a `JoinHandle` whose output was taken;
/// `boundedChannel` and `broadcastChannel` with a capacity below 1;
/// `AsyncSemaphore(permits:)` and `addPermits` below 0 or past `Int.max`
/// permits free, `acquire`, `acquireFuture` and `tryAcquire` below 1
/// (`tryAcquire(-3)` made 3 permits out of nothing; `addPermits(-5)` left the
/// count negative); `chunks`, `buffered`, `bufferUnordered` and
/// `forEachConcurrent` (poll and async) with a size or limit below 1, `skip`
/// and `prefix` of a negative count (`prefix(-1)` was an empty stream), and
/// `race`, `selectAll` and `selectOk` of no future. (`LoopThread.shutdown()`
/// and `LoopGroup.shutdown()` on one of their own threads trapped; they now
/// return, and the loops stop: `LoopGroupTests.shutdownFromOwnLoop`.)
///
/// Polling outside a runtime a future whose output can carry an error
/// (connect, resolve, open, a child's spawn, a pipe, `spawnBlocking`, a
/// watch's first change) gives
/// `.wrongThread`: `pollingOutsideARuntime` below. Not tested, and reported:
/// polling `Sleep` or an `AsyncFuture` outside a runtime (their outputs have
/// no room for an error) traps by a precondition stated only in the code;
/// `Runtime.spawn` from another thread has no way to report the error and is
/// not checked; `Runtime.report()` there traps, as its documentation says (a
/// `Runtime` is not `Sendable`: another thread reaches it only around
/// Swift's checks).
@Suite("Every public entry point rejects bad input with an error value")
struct EveryPublicEntryPointRejectsBadInputTests {
    /// A listener on `runtime` that answers each connection with `reply`, then
    /// closes it.
    static func replyingServer(_ runtime: Runtime, reply: [UInt8]) throws -> (TCPListener, SocketAddress) {
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        runtime.spawn(NetTest.acceptLoop(listener) { stream in stream.writeAll(reply) })
        return (listener, address)
    }

    /// A connection to a server that sends `reply` and closes.
    static func connection(replying reply: [UInt8]) throws -> (Runtime, TCPStream) {
        let runtime = try Runtime()
        let (_, address) = try replyingServer(runtime, reply: reply)
        let stream = try runtime.block(on: timeoutFuture(.seconds(5), TCPStream.connectFuture(to: address))).get().get()
        return (runtime, stream)
    }

    /// The largest `Duration`.
    static let longest = Duration(secondsComponent: .max, attosecondsComponent: 999_999_999_999_999_999)

    // MARK: - Addresses

    // Before the fix that came with this file, each of these reached libuv or
    // getaddrinfo as a C string cut short at the NUL: "127.0.0.1\0junk" was
    // taken for 127.0.0.1.
    @Test("a future that needs a loop, polled by hand where none runs, is ready with .wrongThread naming its operation, not a trap")
    func pollingOutsideARuntime() throws {
        func outcome<F: Future, T>(_ future: F) -> WeftError? where F.Output == Result<T, WeftError> {
            var future = future
            var context = Context(waker: .noop)
            guard case .ready(.failure(let error)) = future.poll(&context) else { return nil }
            return error
        }
        func firstOutcome<S: PollStream, T>(_ stream: S) -> WeftError? where S.Element == Result<T, WeftError> {
            var stream = stream
            var context = Context(waker: .noop)
            guard case .ready(.failure(let error)?) = stream.pollNext(&context) else { return nil }
            return error
        }
        let address = try SocketAddress("127.0.0.1:9")
        let errors: [(String, WeftError?)] = [
            // It was .invalidArgument, "no runtime: pass one, or install
            // from inside a task".
            ("watch", firstOutcome(FileSystem.watch("/tmp"))),
            ("connect", outcome(TCPStream.connectFuture(to: address))),
            ("connect", outcome(UnixStream.connectFuture(to: .path("/tmp/weft-no-such-socket")))),
            ("resolve", outcome(resolveFuture(host: "localhost", port: 80))),
            ("open", outcome(File.openFuture("/tmp/weft-no-such-file"))),
            ("remove", outcome(FileSystem.removeFileFuture("/tmp/weft-no-such-file"))),
            ("spawn", outcome(Command("/bin/true").spawnFuture())),
            ("spawn", outcome(Command("/bin/true").statusFuture())),
            ("spawn", outcome(Command("/bin/true").outputFuture())),
            ("pipe", outcome(PipeStream.pipeFuture())),
            ("spawnBlocking", outcome(spawnBlocking { 1 })),
            // A numeric host is bound at once: it said "no runtime", .invalidArgument.
            ("bind", outcome(TCPListener.bindFuture(host: "127.0.0.1", port: 0))),
            ("bind", outcome(TCPListener.bindFuture(host: "localhost", port: 0))),
            ("bind udp", outcome(UDPSocket.bindFuture(host: "127.0.0.1", port: 0))),
        ]
        for (operation, error) in errors {
            #expect(error?.code == .wrongThread, "\(operation): \(String(describing: error))")
            #expect(error?.operation.hasPrefix(operation) == true, "\(operation): \(String(describing: error))")
            #expect(error?.description.contains("outside a Weft runtime") == true)
        }
    }

    @Test("a host containing a NUL character is rejected with .invalidArgument by SocketAddress, resolve(host:port:) and connect(host:port:)")
    func hostWithNUL() throws {
        let host = "127.0.0.1\0junk"
        let parsed = try #require(throws: WeftError.self) { _ = try SocketAddress("\(host):80") }
        #expect(parsed.kind == .invalidArgument)
        #expect(parsed.detail.contains("NUL"))
        let built = try #require(throws: WeftError.self) { _ = try SocketAddress(host: host, port: 80) }
        #expect(built.kind == .invalidArgument)

        let runtime = try Runtime()
        let (listener, address) = try Self.replyingServer(runtime, reply: [1])
        let resolved = try runtime.block(on: timeoutFuture(.seconds(5), resolveFuture(host: host, port: address.port))).get()
        #expect(resolved.failure?.kind == .invalidArgument)
        let connected = try runtime.block(on: timeoutFuture(.seconds(5), TCPStream.connectFuture(host: host, port: address.port))).get()
        #expect(connected.failure?.kind == .invalidArgument)
        #expect(connected.failure?.detail.contains("NUL") == true)
        listener.close()
    }

    // Before the fix that came with this file, getaddrinfo took the port modulo
    // 65536: connect(host: "127.0.0.1", port: p + 65536) connected to port p.
    @Test("resolve(host:port:) and connect(host:port:) reject a port outside 0...65535 with .invalidArgument quoting it, instead of wrapping it round to another port")
    func portOutOfRangeByName() throws {
        let runtime = try Runtime()
        for port in [70000, 65536, -1, Int.max] {
            let resolved = try runtime.block(on: timeoutFuture(.seconds(5), resolveFuture(host: "127.0.0.1", port: port))).get()
            let error = try #require(resolved.failure, "port \(port) resolved to \(resolved)")
            #expect(error.kind == .invalidArgument)
            #expect("\(error)".contains("\(port)"))
        }

        let listener = try NetTest.bindLoopback(runtime)
        let port = try listener.localAddress.port
        let wrapped = port + 65536
        let connected = try runtime.block(on: timeoutFuture(.seconds(5), TCPStream.connectFuture(host: "127.0.0.1", port: wrapped))).get()
        #expect(connected.failure?.kind == .invalidArgument, "connect to port \(wrapped): \(connected)")
        // Nothing reached the listener on port `wrapped - 65536`.
        let arrived = try runtime.block(on: select(either: listener.acceptFuture(), or: sleepFuture(for: .milliseconds(20))))
        #expect(arrived.right != nil, "a connection meant for port \(wrapped) reached port \(port)")
    }

    @Test("resolving an empty host fails with an error value")
    func emptyHost() throws {
        let runtime = try Runtime()
        let resolved = try runtime.block(on: timeoutFuture(.seconds(5), resolveFuture(host: "", port: 80))).get()
        let error = try #require(resolved.failure, "resolved an empty host to \(resolved)")
        #expect(error.operation.hasPrefix("resolve"))
    }

    @Test("binding an address that is not on this machine fails with EADDRNOTAVAIL naming it and leaves no handle open")
    func bindForeignAddress() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let error = try #require(throws: WeftError.self) {
            _ = try TCPListener.bind(SocketAddress("192.0.2.1:0"), runtime: runtime)  // TEST-NET-1
        }
        #expect(error.name == "EADDRNOTAVAIL")
        #expect("\(error)".contains("192.0.2.1:0"))
        #expect(runtime.openHandleCount == baseline)
    }

    @Test("a listen backlog beyond Int32 is rejected with .invalidArgument quoting it")
    func hugeBacklog() throws {
        let runtime = try Runtime()
        for backlog in [Int(Int32.max) + 1, Int.max] {
            let error = try #require(throws: WeftError.self) {
                _ = try TCPListener.bind(NetTest.loopbackAnyPort(), backlog: backlog, runtime: runtime)
            }
            #expect(error.kind == .invalidArgument)
            #expect(error.detail.contains("\(backlog)"))
        }
    }

    // MARK: - Durations

    @Test("sleep(for:) the largest Duration stays pending without overflowing; the most negative Duration completes at its first poll")
    func extremeSleeps() throws {
        let runtime = try Runtime()
        let outcome = try runtime.block(on: select(
            either: sleepFuture(for: Self.longest),
            or: sleepFuture(for: .milliseconds(5)).map { "short" }
        ))
        #expect(outcome.right == "short")
        #expect(runtime.pendingTimerCount == 0)

        let polls = Counter()
        try runtime.block(on: sleepFuture(for: .seconds(Int64.min)).counted(polls))
        #expect(polls.value == 1)
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("sleep(until:) an instant centuries away stays pending without overflowing")
    func sleepUntilCenturiesAway() throws {
        let runtime = try Runtime()
        let far = ContinuousClock.now.advanced(by: .seconds(Int64.max / 4))
        let outcome = try runtime.block(on: select(
            either: sleepFuture(until: far),
            or: sleepFuture(for: .milliseconds(5)).map { "short" }
        ))
        #expect(outcome.right == "short")
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("timeout with a negative or zero limit times out at the first poll of a pending future, carrying its limit; with the largest Duration it never fires")
    func extremeTimeouts() throws {
        let runtime = try Runtime()
        for limit: Duration in [.seconds(-10), .zero, .seconds(Int64.min)] {
            let polls = Counter()
            let outcome = try runtime.block(on: timeoutFuture(limit, pending(Int.self)).counted(polls))
            #expect(outcome.failure?.limit == limit)
            #expect(polls.value == 1)
        }
        let outcome = try runtime.block(on: timeoutFuture(Self.longest, sleepFuture(for: .milliseconds(2)).map { 42 }))
        #expect(try outcome.get() == 42)
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("interval(every:) with a zero or negative period ticks at every poll (a one-nanosecond period, as documented), skipping indices; with an enormous period it ticks once, then waits")
    func extremeIntervals() throws {
        let runtime = try Runtime()
        for period: Duration in [.zero, .seconds(-3), .seconds(Int64.min)] {
            let ticks = try runtime.block(on: timeoutFuture(.seconds(5),
                interval(every: period).prefix(5).fold([Int]()) { $0 + [$1] })).get()
            #expect(ticks.count == 5)
            #expect(ticks.first == 0)
            #expect(zip(ticks, ticks.dropFirst()).allSatisfy { $0 < $1 }, "indices \(ticks)")
        }
        for period in [Self.longest, .seconds(Int64.max / 2)] {
            let first = try runtime.block(on: timeoutFuture(.seconds(5), interval(every: period).next())).get()
            #expect(first.element == 0)
            let second = try runtime.block(on: select(
                either: first.rest.next(),
                or: sleepFuture(for: .milliseconds(5)).map { "short" }
            ))
            #expect(second.right == "short")
            #expect(runtime.pendingTimerCount == 0)
        }
    }

    @Test("setKeepAlive accepts a zero or negative delay (it uses one second), refuses a delay past the kernel's limit (32,767 s) with .invalidArgument without turning keep-alive on, and the stream stays usable")
    func extremeKeepAliveDelays() throws {
        let (runtime, stream) = try Self.connection(replying: [7])
        let fd = try #require(SocketProbe.descriptor(localPort: try stream.localAddress.port, peerPort: try stream.peerAddress.port))
        try stream.setKeepAlive(true, delay: .zero)
        try stream.setKeepAlive(true, delay: .seconds(-5))
        try stream.setKeepAlive(true, delay: .seconds(Int64.min))
        #expect(SocketProbe.option(fd, SOL_SOCKET, SO_KEEPALIVE) == 1)
        #expect(SocketProbe.option(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE) == 1)
        try stream.setKeepAlive(false)
        for delay: Duration in [.seconds(32_768), .seconds(Int64.max)] {
            let error = try #require(throws: WeftError.self) { try stream.setKeepAlive(true, delay: delay) }
            #expect(error.kind == .invalidArgument, "\(delay): \(error)")
            #expect(error.detail.contains("32767"), "\(error)")
            #expect(SocketProbe.option(fd, SOL_SOCKET, SO_KEEPALIVE) == 0, "a refused delay turned keep-alive on")
        }
        try stream.setKeepAlive(true, delay: .seconds(32_767))
        #expect(SocketProbe.option(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE) == 32_767)
        try stream.setKeepAlive(false)
        #expect(try runtime.block(on: timeoutFuture(.seconds(5), stream.readExact(1))).get().get() == [7])
    }

    // MARK: - Lengths

    // Before the fix that came with this file, readExact allocated `count`
    // bytes when it was created: readExact(Int.max) crashed the process
    // ("failed to allocate 9223372036854775839 bytes").
    @Test("readExact of Int.max or 1 TiB bytes fails at the end of the stream, saying how many bytes came, instead of trapping on an allocation")
    func hugeReadExact() throws {
        for count in [Int.max, 1 << 40] {
            let (runtime, stream) = try Self.connection(replying: [1, 2, 3])
            let outcome = try runtime.block(on: timeoutFuture(.seconds(5), stream.readExact(count))).get()
            let error = try #require(outcome.failure, "readExact(\(count)) gave \(outcome)")
            #expect(error.name == "EOF")
            #expect(error.detail.contains("after 3 of \(count) bytes"), "\(error)")
        }
    }

    @Test("readToEnd(limit:) with a zero or negative limit fails with .invalidArgument once a byte arrives; read(upTo: Int.max) returns what is there")
    func extremeReadLimits() throws {
        for limit in [0, -1, Int.min] {
            let (runtime, stream) = try Self.connection(replying: [1, 2, 3])
            let outcome = try runtime.block(on: timeoutFuture(.seconds(5), stream.readToEnd(limit: limit))).get()
            #expect(outcome.failure?.kind == .invalidArgument, "readToEnd(limit: \(limit)) gave \(outcome)")
        }
        let (runtime, stream) = try Self.connection(replying: [1, 2, 3])
        var received: [UInt8] = []
        while received.count < 3 {
            let bytes = try runtime.block(on: timeoutFuture(.seconds(5), stream.readFuture(upTo: Int.max))).get().get()
            if bytes.isEmpty { break }
            received += bytes
        }
        #expect(received == [1, 2, 3])
    }

    // MARK: - Use after close

    @Test("a closed stream's split halves fail with .closed")
    func closedHalves() throws {
        let (runtime, stream) = try Self.connection(replying: [1])
        let (reader, writer) = stream.split()
        stream.close()
        #expect(try runtime.block(on: reader.readExact(1)).failure?.kind == .closed)
        #expect(try runtime.block(on: reader.readToEnd()).failure?.kind == .closed)
        #expect(try runtime.block(on: writer.writeAll([1])).failure?.kind == .closed)
        #expect(try runtime.block(on: writer.flushFuture()).failure?.kind == .closed)
        #expect(try runtime.block(on: writer.shutdownFuture()).failure?.kind == .closed)
    }

    @Test("a closed listener's localAddress and async accept() fail with .closed, and its connections sequence ends at once; a closed stream's async read, write and shutdown, and its split halves', fail with .closed")
    func closedAsyncFaces() async throws {
        let loop = try LoopThread()
        let task = loop.spawn { () async throws -> (kinds: [String: WeftError.Kind?], connections: Int) in
            var kinds: [String: WeftError.Kind?] = [:]
            let (listener, client, server) = try await connectedPairOnThisLoop()
            listener.close()
            kinds["localAddress"] = thrownKind { _ = try listener.localAddress }
            kinds["accept"] = await thrownKind { _ = try await listener.accept() }
            var connections = 0
            for try await _ in listener.connections { connections += 1 }
            client.close()
            kinds["read"] = await thrownKind { _ = try await client.read() }
            kinds["write"] = await thrownKind { try await client.write([1]) }
            kinds["shutdown"] = await thrownKind { try await client.shutdown() }
            let (reader, writer) = client.split()
            kinds["half read"] = await thrownKind { _ = try await reader.read() }
            kinds["half write"] = await thrownKind { try await writer.write([1]) }
            kinds["half flush"] = await thrownKind { try await writer.flush() }
            kinds["half shutdown"] = await thrownKind { try await writer.shutdown() }
            server.close()
            return (kinds, connections)
        }
        let (kinds, connections) = try await awaitWithin(.seconds(20), task)
        await shutDownOffThePool(loop)
        #expect(connections == 0, "a closed listener's connections yielded \(connections)")
        #expect(kinds.count == 9)
        for (operation, kind) in kinds.sorted(by: { $0.key < $1.key }) {
            #expect(kind == .closed, "\(operation) after close: \(String(describing: kind))")
        }
    }

    // MARK: - Use after shutdown

    // Before the fix that came with this file, both succeeded: the listener was
    // bound and listening on a loop that would never run again, so clients'
    // connections sat in its backlog forever.
    @Test("binding a listener or installing a signal handler with a runtime that was shut down fails with .shutDown and opens nothing")
    func afterShutdown() throws {
        let runtime = try Runtime()
        try runtime.shutdown()
        let bound = try #require(throws: WeftError.self) {
            _ = try TCPListener.bind(NetTest.loopbackAnyPort(), runtime: runtime)
        }
        #expect(bound.kind == .shutDown)
        var stream = signals(SIGWINCH)
        let installed = try #require(throws: WeftError.self) { try stream.install(runtime: runtime) }
        #expect(installed.kind == .shutDown)
        #expect(runtime.openHandleCount == 0)
    }

    // MARK: - Signals

    // Before the fix that came with this file, a failed install closed the
    // libuv handle twice (in the initializer and in deinit): the process
    // aborted on libuv's assertion `!uv__is_closing(handle)`.
    @Test("a signal number that does not exist or cannot be caught is refused with an error value, and such a stream ends at once")
    func badSignalNumbers() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        for number in [0, -1, 9999, SIGKILL, SIGSTOP] {
            var stream = signals(number)
            let error = try #require(throws: WeftError.self, "signal \(number)") { try stream.install(runtime: runtime) }
            #expect(error.name != nil, "signal \(number): \(error)")
            #expect(error.operation.contains("\(number)"))
            let next = try runtime.block(on: timeoutFuture(.seconds(5), signals(number).next())).get()
            #expect(next.element == nil, "signal \(number) yielded \(String(describing: next.element))")
        }
        #expect(runtime.openHandleCount == baseline)
    }

    // MARK: - Wrong thread

    // Before the fix that came with this file, both succeeded, touching the
    // loop from a thread that does not own it while its own thread might be
    // running it.
    @Test("binding a listener or installing a signal handler with a runtime that belongs to another thread fails with .wrongThread")
    func handlesFromAnotherThread() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        nonisolated(unsafe) let borrowed = runtime  // only for the calls that must refuse it
        let kinds = Shared<[WeftError.Kind?]>([])
        ForeignThread {
            var outcome: [WeftError.Kind?] = []
            do throws(WeftError) {
                _ = try TCPListener.bind(SocketAddress("127.0.0.1:0"), runtime: borrowed)
                outcome.append(nil)
            } catch {
                outcome.append(error.kind)
            }
            var stream = signals(SIGWINCH)
            do throws(WeftError) {
                try stream.install(runtime: borrowed)
                outcome.append(nil)
            } catch {
                outcome.append(error.kind)
            }
            kinds.value = outcome
        }.join()
        #expect(kinds.value == [.wrongThread, .wrongThread])
        #expect(runtime.openHandleCount == baseline)
        // On its own thread the runtime still takes both.
        let listener = try NetTest.bindLoopback(runtime)
        listener.close()
    }

    @Test("block(on:) and shutdown() called on a thread other than the runtime's fail with .wrongThread")
    func runtimeFromAnotherThread() throws {
        let runtime = try Runtime()
        nonisolated(unsafe) let borrowed = runtime  // only for the calls that must refuse it
        let kinds = Shared<[WeftError.Kind?]>([])
        ForeignThread {
            var outcome: [WeftError.Kind?] = []
            do throws(WeftError) {
                _ = try borrowed.block(on: ready(1))
                outcome.append(nil)
            } catch {
                outcome.append(error.kind)
            }
            do throws(WeftError) {
                try borrowed.shutdown()
                outcome.append(nil)
            } catch {
                outcome.append(error.kind)
            }
            kinds.value = outcome
        }.join()
        #expect(kinds.value == [.wrongThread, .wrongThread])
        // Runtime.spawn from another thread is not checked: it has no error to
        // return (documented on Runtime: a runtime belongs to its thread).
    }
}

/// The kind of the `WeftError` that `body` threw, if it threw one.
private func thrownKind(_ body: () throws -> Void) -> WeftError.Kind? {
    do {
        try body()
        return nil
    } catch let error as WeftError {
        return error.kind
    } catch {
        return nil
    }
}

/// The kind of the `WeftError` that `body` threw, if it threw one.
private func thrownKind(_ body: () async throws -> Void) async -> WeftError.Kind? {
    do {
        try await body()
        return nil
    } catch let error as WeftError {
        return error.kind
    } catch {
        return nil
    }
}
