import Glibc
import Testing
import Weft

@Suite("Signal streams", .serialized)
struct SignalStreamTests {
    @Test("two tasks waiting on copies of one installed signal stream are both served: each SIGUSR2 sent to this process wakes both, and one of them takes it")
    func copiesWaitingInTwoTasks() throws {
        let runtime = try Runtime()
        var stream = signals(SIGUSR2)
        try stream.install(runtime: runtime)
        let received = Counter()
        let waiters = [stream, stream].map { copy in
            runtime.spawn(copy.next().map { next in
                if next.element == SIGUSR2 { received.value += 1 }
            })
        }
        _ = consume stream
        try runtime.block(on: sleepFuture(for: .milliseconds(20)))  // both wait
        for expected in 1...2 {
            kill(getpid(), SIGUSR2)
            let arrived = try runtime.block(on: timeoutFuture(.seconds(10), NetTest.eventually { received.value >= expected }))
            #expect(arrived.isSuccess, "delivery \(expected) did not reach a waiting task")
        }
        for waiter in waiters {
            let ended = try runtime.block(on: timeoutFuture(.seconds(10), waiter))
            #expect(ended.isSuccess, "\(ended)")
        }
        #expect(received.value == 2)
    }

    @Test("an installed stream's values await each delivery on the loop it was installed on; once that loop shut down, next() throws instead of waiting for ever (it was polled on the shared loop, beside the handle's own)")
    func valuesOnTheInstalledLoop() async throws {
        let loop = try LoopThread()
        let stream = try await Self.urgentSignals(installedOn: loop)
        let iterator = Unchecked(stream.value.values.makeAsyncIterator())
        kill(getpid(), SIGURG)
        let first = try await awaitWithin(.seconds(10), Task { try await iterator.value.next() })
        #expect(first == SIGURG)
        _ = await shutDownOffThePool(loop)
        let afterShutdown = await outcome(of: { try await awaitWithin(.seconds(5), Task { try await iterator.value.next() }) })
        switch afterShutdown {
        case .success(let element): #expect(element == nil, "next() after the stream's loop shut down: \(afterShutdown)")
        case .failure(let error): #expect(error is CancellationError, "next() after the stream's loop shut down: \(error)")
        }
    }

    @Test("dropping the last stream of a signal gives it back the disposition it had: one ignored (SIGHUP under nohup) is ignored again, not left to its default action (libuv's reset)")
    func dispositionRestored() throws {
        /// The signal's handler now, as a number (`SIG_IGN` is 1, `SIG_DFL` 0).
        func handler(_ number: Int32) -> Int {
            var action = sigaction()
            sigaction(number, nil, &action)
            return unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self)
        }
        let ignored = unsafeBitCast(SIG_IGN, to: Int.self)
        let original = signal(SIGURG, SIG_IGN)
        defer { signal(SIGURG, original) }
        let runtime = try Runtime()
        do {
            var first = signals(SIGURG)
            try first.install(runtime: runtime)
            var second = signals(SIGURG)
            try second.install(runtime: runtime)
            #expect(handler(SIGURG) != ignored, "not watched")
            _ = consume first
            #expect(handler(SIGURG) != ignored, "the second stream's handler went with the first stream")
            _ = consume second
        }
        // Both gone (closed at once: on their loop's thread).
        #expect(handler(SIGURG) == ignored, "SIGURG's disposition after its last stream went: \(handler(SIGURG))")
        try runtime.block(on: yieldNow())
    }

    @Test("a stream installed on one loop and awaited with value(of:) elsewhere (polled on the shared loop) gets its delivery: the deliveries are locked, not confined to the loop")
    func polledOffItsLoop() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let stream = try await Self.urgentSignals(installedOn: loop)
        let sender = ForeignThread {
            usleep(50_000)  // the await waits first
            kill(getpid(), SIGURG)
        }
        defer { sender.join() }
        let next = try await awaitWithin(.seconds(10), Task { try await value(of: stream.value.next()).element })
        #expect(next == SIGURG)
    }

    @Test("a stream installed on a loop and left by a for-await off any loop (break) is closed on its loop: its handle goes, and the loop goes on serving (it was closed on the leaving thread, racing the loop)")
    func valuesLeftOffTheLoop() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let openHandles = { await loop.run { Runtime.currentReport()?.openHandleCount ?? -1 } }
        let before = await openHandles()
        do {
            let stream = try await Self.urgentSignals(installedOn: loop)
            #expect(await openHandles() == before + 1)
            kill(getpid(), SIGURG)
            for try await number in stream.value.values {
                #expect(number == SIGURG)
                break
            }
        }
        var after = await openHandles()
        for _ in 0..<100 where after != before {
            try await Task.sleep(for: .milliseconds(10))
            after = await openHandles()
        }
        #expect(after == before, "the signal handle is still open")
    }

    @Test("a stream whose loop shuts down while it is held ends (nil) where it is polled (here on the shared loop), instead of waiting for ever for a delivery no loop would report: one already waiting, and one first polled afterwards")
    func streamEndsWhenItsLoopShutsDown() async throws {
        let loop = try LoopThread()
        let waiting = try await Self.urgentSignals(installedOn: loop)
        let unpolled = try await Self.urgentSignals(installedOn: loop)
        let waiter = Task { try await value(of: waiting.value.next()).element }
        try await Task.sleep(for: .milliseconds(100))  // it waits
        await shutDownOffThePool(loop)
        // 20 s: the bug waits for ever, and a loaded pool resumes a task late.
        let ended = try await awaitWithin(.seconds(20), waiter)
        #expect(ended == nil, "a delivery after the shutdown: \(String(describing: ended))")
        let late = try await awaitWithin(.seconds(20), Task { try await value(of: unpolled.value.next()).element })
        #expect(late == nil, "a delivery after the shutdown: \(String(describing: late))")
    }

    @Test("shutdownSignal() polled off any runtime traps, as a Sleep does, instead of returning pending with no handler installed to wake it (a silent hang: its signal number cannot carry the error); install() throws it")
    func shutdownSignalOffAnyRuntime() async {
        var unattached = shutdownSignal()
        #expect(throws: WeftError.self) { try unattached.install() }
        await #expect(processExitsWith: .failure) {
            var stop = shutdownSignal()
            var context = Context(waker: .noop)
            _ = stop.poll(&context)
        }
    }
}

extension SignalStreamTests {
    /// A stream of SIGURG (default action: ignored; no other suite uses it)
    /// installed on `loop`.
    fileprivate static func urgentSignals(installedOn loop: LoopThread) async throws(WeftError) -> Unchecked<SignalStream> {
        try await loop.run { () throws(WeftError) -> Unchecked<SignalStream> in
            var stream = signals(SIGURG)
            try stream.install()
            return Unchecked(stream)
        }
    }
}

/// A value moved between tasks that never touch it at the same time (each
/// test awaits one before the next), for types that are not `Sendable`.
private final class Unchecked<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
