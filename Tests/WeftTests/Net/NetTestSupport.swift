import Synchronization
import Foundation
import Glibc
import Testing
import Weft

// Helpers for the TCP, IO and sample tests. Everything lives in the `NetTest`
// namespace so that nothing here can clash with the names of other test files.
// Everything uses Weft's public API only; raw Glibc sockets stand in for
// misbehaving peers.

enum NetTest {
    // MARK: - Addresses and listeners

    /// `127.0.0.1:0`: loopback, any free port.
    static func loopbackAnyPort() throws -> SocketAddress {
        try SocketAddress("127.0.0.1:0")
    }

    /// A listener on 127.0.0.1 with a port chosen by the OS.
    static func bindLoopback(_ runtime: Runtime, backlog: Int = 1024) throws -> TCPListener {
        try TCPListener.bind(loopbackAnyPort(), backlog: backlog, runtime: runtime)
    }

    /// A listener on 127.0.0.1 with a port chosen by the OS, bound on `loop`
    /// (within 20 s), and the address it listens on.
    static func bindLoopback(on loop: LoopThread) async throws -> (TCPListener, SocketAddress) {
        try await awaitWithin(.seconds(20), loop.spawn { () async throws -> (TCPListener, SocketAddress) in
            let listener = try TCPListener.bind(loopbackAnyPort())
            return (listener, try listener.localAddress)
        })
    }

    // MARK: - Leak checks

    /// A new runtime and its own handle count, the baseline for
    /// `expectNothingLeftOpen(_:handlesBefore:)`: the runtime opens all its own
    /// handles in `init`.
    static func runtimeWithHandleBaseline() throws -> (Runtime, Int) {
        let runtime = try Runtime()
        return (runtime, runtime.openHandleCount)
    }

    /// The end of every integration scenario: once everything the test opened
    /// was closed or dropped, nothing may be left on `runtime` — no handle
    /// beyond `baseline` (from `runtimeWithHandleBaseline()`, so the runtime's
    /// own handles are counted in it), no libuv request in flight, no armed
    /// timer, no live task and no await still waiting on the loop.
    ///
    /// Peers need a moment to see a close (an echo task reads EOF, writes and
    /// connects are cancelled in close callbacks), so the loop runs in 5 ms
    /// turns, at least once, until everything is released or `limit` has
    /// passed; then each figure is checked.
    static func expectNothingLeftOpen(
        _ runtime: Runtime,
        handlesBefore baseline: Int,
        within limit: Duration = .milliseconds(500),
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let start = ContinuousClock.now
        func isClean() -> Bool {
            runtime.openHandleCount == baseline && runtime.activeRequestCount == 0
                && runtime.pendingTimerCount == 0 && runtime.statistics.tasksAlive == 0
                && runtime.statistics.awaitsWaiting == 0
        }
        repeat {
            try runtime.block(on: sleepFuture(for: .milliseconds(5)))
        } while !isClean() && ContinuousClock.now - start < limit
        let waited = Int((ContinuousClock.now - start) / .milliseconds(1))
        let handles = runtime.openHandleCount
        let requests = runtime.activeRequestCount
        let timers = runtime.pendingTimerCount
        let tasks = runtime.statistics.tasksAlive
        let awaits = runtime.statistics.awaitsWaiting
        let after = "after running the loop for \(waited) ms"
        #expect(handles == baseline,
                "\(handles) handle(s) open, expected the runtime's own \(baseline), \(after)",
                sourceLocation: sourceLocation)
        #expect(requests == 0, "\(requests) libuv request(s) still in flight \(after)", sourceLocation: sourceLocation)
        #expect(timers == 0, "\(timers) timer(s) still armed \(after)", sourceLocation: sourceLocation)
        #expect(tasks == 0, "\(tasks) task(s) still alive \(after)", sourceLocation: sourceLocation)
        #expect(awaits == 0, "\(awaits) await(s) still waiting on the loop \(after)", sourceLocation: sourceLocation)
    }

    /// Weft tasks alive on an idle `LoopThread`: exactly one, the future its
    /// thread blocks on until ``LoopThread/shutdown()`` (the loop runs inside
    /// `runtime.block(on:)`, whose future is a task of the runtime).
    static let loopThreadOwnTasks = 1

    /// `openHandleCount` of the runtime behind `loop`, read on the loop: the
    /// baseline for ``expectNothingLeftOpen(on:handlesBefore:within:sourceLocation:)``.
    /// Take it right after creating the loop, before the scenario opens anything.
    /// Also checks that the fresh loop has no Weft task but its own (see
    /// ``loopThreadOwnTasks``), which the final check relies on.
    static func handleBaseline(
        on loop: LoopThread, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> Int {
        let report = try await awaitWithin(.seconds(20), loop.spawn { () throws -> RuntimeReport in
            guard let report = Runtime.currentReport() else { throw mismatch("the probe did not run on a Weft loop") }
            return report
        }, sourceLocation: sourceLocation)
        #expect(report.statistics.tasksAlive == loopThreadOwnTasks,
                "a fresh LoopThread should run only its own task:\n\(report)", sourceLocation: sourceLocation)
        return report.openHandleCount
    }

    /// ``expectNothingLeftOpen(_:handlesBefore:within:sourceLocation:)`` for a
    /// `LoopThread`, whose runtime is reachable only from code running on it:
    /// once everything the test opened on `loop` was closed or dropped, no
    /// handle beyond `baseline` (from ``handleBaseline(on:sourceLocation:)``),
    /// no libuv request in flight, no armed timer, no Weft task but the loop's
    /// own, and no await still waiting on the loop may be left.
    ///
    /// A probe spawned on the loop sleeps 5 ms (Weft's async `sleep(for:)`, at
    /// least once, so that peers see closes handed over from other threads) and
    /// reads `Runtime.currentReport()`, until the report is clean or `limit` has
    /// passed; then each figure is checked, the full report in the messages.
    ///
    /// **Awaits.** A Swift task that awaits a Weft future on the loop (a read,
    /// an accept, a sleep, `value(of:)`) polls it inline: no Weft task backs it,
    /// so `statistics.tasksAlive` cannot see it. `statistics.awaitsWaiting`
    /// counts those suspended right now; the probe reads its report after its
    /// own sleep resumed, so it adds nothing, and anything above zero is a Swift
    /// task the scenario left hanging on a Weft operation. (Swift tasks
    /// suspended on something other than Weft, such as `Task.sleep`, are
    /// invisible here.) `tasksAlive` must be ``loopThreadOwnTasks``: more is a
    /// Weft task the scenario spawned and left pending.
    static func expectNothingLeftOpen(
        on loop: LoopThread,
        handlesBefore baseline: Int,
        within limit: Duration = .milliseconds(500),
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let probe = loop.spawn { () async throws -> (RuntimeReport, Duration) in
            let start = ContinuousClock.now
            func isClean(_ report: RuntimeReport) -> Bool {
                report.openHandleCount == baseline && report.activeRequestCount == 0
                    && report.pendingTimerCount == 0 && report.statistics.tasksAlive == loopThreadOwnTasks
                    && report.statistics.awaitsWaiting == 0
            }
            var report: RuntimeReport
            repeat {
                try await Weft.sleep(for: .milliseconds(5))
                guard let current = Runtime.currentReport() else { throw mismatch("the probe did not run on a Weft loop") }
                report = current
            } while !isClean(report) && ContinuousClock.now - start < limit
            return (report, ContinuousClock.now - start)
        }
        let (report, waited) = try await awaitWithin(.seconds(20), probe, sourceLocation: sourceLocation)
        let after = "after \(Int(waited / .milliseconds(1))) ms on the loop; report:\n\(report)"
        #expect(report.openHandleCount == baseline,
                "\(report.openHandleCount) handle(s) open, expected the loop's own \(baseline), \(after)",
                sourceLocation: sourceLocation)
        #expect(report.activeRequestCount == 0,
                "\(report.activeRequestCount) libuv request(s) still in flight \(after)", sourceLocation: sourceLocation)
        #expect(report.pendingTimerCount == 0,
                "\(report.pendingTimerCount) timer(s) still armed \(after)", sourceLocation: sourceLocation)
        let tasks = report.statistics.tasksAlive
        #expect(tasks == loopThreadOwnTasks,
                "\(tasks) Weft task(s) alive, expected the loop's own \(loopThreadOwnTasks) \(after)",
                sourceLocation: sourceLocation)
        #expect(report.statistics.awaitsWaiting == 0,
                "\(report.statistics.awaitsWaiting) await(s) still waiting on the loop \(after)",
                sourceLocation: sourceLocation)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// A `WeftError` for a test-side check that failed inside a future.
    static func mismatch(_ what: String) -> WeftError {
        WeftError(.invalidArgument, operation: "test check", detail: what)
    }

    // MARK: - Loop-thread state

    /// A mutable box touched only on the thread running the runtime.
    final class Cell<Value> {
        var value: Value
        init(_ value: Value) { self.value = value }
    }

    // MARK: - Servers

    /// Accepts connections until the listener closes, spawning `serve(stream)`
    /// as a task of the same runtime for each one.
    struct AcceptLoop<Served: Future>: Future {
        var connections: Incoming
        let serve: (TCPStream) -> Served
        let accepted: Cell<Int>

        mutating func poll(_ context: inout Context) -> Poll<Void> {
            while true {
                switch connections.pollNext(&context) {
                case .pending:
                    return .pending
                case .ready(nil):
                    return .ready(())
                case .ready(.some(.failure)):
                    continue  // the listener keeps going
                case .ready(.some(.success(let stream))):
                    accepted.value += 1
                    spawn(serve(stream))
                }
            }
        }
    }

    static func acceptLoop<Served: Future>(
        _ listener: TCPListener, accepted: Cell<Int> = Cell(0), serve: @escaping (TCPStream) -> Served
    ) -> AcceptLoop<Served> {
        AcceptLoop(connections: listener.incoming, serve: serve, accepted: accepted)
    }

    /// Echoes everything until the client half-closes, then half-closes back.
    static func echo(_ stream: TCPStream) -> some Future<Result<Void, WeftError>> {
        copy(from: stream, to: stream).then { copied in
            stream.shutdownFuture().map { shut in copied.flatMap { _ in shut } }
        }
    }

    // MARK: - Sequencing

    /// Runs `first`, then (on success only) the future `next` builds from its
    /// value; a failure of `first` short-circuits.
    struct AndThen<First: Future, Second: Future, T, U, E: Error>: Future
    where First.Output == Result<T, E>, Second.Output == Result<U, E> {
        enum Stage { case first(First), second(Second), done }
        var stage: Stage
        let next: (T) -> Second

        mutating func poll(_ context: inout Context) -> Poll<Result<U, E>> {
            if case .first(var first) = stage {
                stage = .done
                switch first.poll(&context) {
                case .pending:
                    stage = .first(first)
                    return .pending
                case .ready(.failure(let error)):
                    return .ready(.failure(error))
                case .ready(.success(let value)):
                    stage = .second(next(value))
                }
            }
            guard case .second(var second) = stage else { preconditionFailure("AndThen polled after it completed") }
            stage = .done
            switch second.poll(&context) {
            case .pending:
                stage = .second(second)
                return .pending
            case .ready(let result):
                return .ready(result)
            }
        }
    }

    /// Runs `step(0)`, `step(1)`, … `step(count - 1)` one after another; ready
    /// with the first failure, or success once every step succeeded.
    struct Steps<Step: Future, E: Error>: Future where Step.Output == Result<Void, E> {
        let count: Int
        let step: (Int) -> Step
        var index = 0
        var current: Step?

        mutating func poll(_ context: inout Context) -> Poll<Result<Void, E>> {
            while index < count {
                if current == nil { current = step(index) }
                switch current!.poll(&context) {
                case .pending:
                    return .pending
                case .ready(.failure(let error)):
                    current = nil
                    index = count
                    return .ready(.failure(error))
                case .ready(.success):
                    current = nil
                    index += 1
                }
            }
            return .ready(.success(()))
        }
    }

    static func steps<Step: Future, E: Error>(
        _ count: Int, _ step: @escaping (Int) -> Step
    ) -> Steps<Step, E> where Step.Output == Result<Void, E> {
        Steps(count: count, step: step)
    }

    /// Ready once `condition` holds, checking it every millisecond. Bound it
    /// with `timeout`.
    struct Eventually: Future {
        let condition: () -> Bool
        var timer: Sleep?

        mutating func poll(_ context: inout Context) -> Poll<Void> {
            while true {
                if condition() { return .ready(()) }
                if timer == nil { timer = sleepFuture(for: .milliseconds(1)) }
                guard case .ready = timer!.poll(&context) else { return .pending }
                timer = nil
            }
        }
    }

    static func eventually(_ condition: @escaping () -> Bool) -> Eventually {
        Eventually(condition: condition)
    }

    /// Reads from `stream` until end of stream, handing every chunk to `body`
    /// straight from the stream's buffer; yields the number of bytes read.
    struct Drain<Reader: AsyncBufRead>: Future {
        var reader: Reader
        let body: (UnsafeRawBufferPointer) -> Void
        var total = 0

        mutating func poll(_ context: inout Context) -> Poll<Result<Int, WeftError>> {
            while true {
                switch reader.pollFillBuffer(&context) {
                case .pending:
                    return .pending
                case .ready(.failure(let error)):
                    return .ready(.failure(error))
                case .ready(.success(let bytes)):
                    if bytes.isEmpty { return .ready(.success(total)) }
                    body(bytes)
                    total += bytes.count
                    reader.consume(bytes.count)
                }
            }
        }
    }

    // MARK: - Checksums

    /// 64-bit FNV-1a.
    struct FNV1a: Equatable, CustomStringConvertible {
        private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

        @_optimize(speed)
        mutating func add(_ bytes: UnsafeRawBufferPointer) {
            var hash = value
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
            value = hash
        }

        mutating func add(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { add($0) }
        }

        var description: String { "0x" + String(value, radix: 16) }
    }

    /// A writer that hashes and counts every byte its base accepts.
    struct HashingWriter<Base: AsyncWrite>: AsyncWrite {
        var base: Base
        let hash: Cell<FNV1a>
        let count: Cell<Int>

        mutating func pollWrite(_ context: inout Context, _ bytes: UnsafeRawBufferPointer) -> Poll<Result<Int, WeftError>> {
            let result = base.pollWrite(&context, bytes)
            if case .ready(.success(let accepted)) = result {
                hash.value.add(UnsafeRawBufferPointer(rebasing: bytes[..<accepted]))
                count.value += accepted
            }
            return result
        }

        mutating func pollFlush(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
            base.pollFlush(&context)
        }

        mutating func pollShutdown(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
            base.pollShutdown(&context)
        }
    }

    // MARK: - Process memory

    /// The resident set size of process `pid` (this process when `nil`) in
    /// bytes, from `/proc/<pid>/statm` (its second field, in pages); -1 if it
    /// cannot be read.
    static func residentBytes(of pid: pid_t? = nil) -> Int {
        let path = pid.map { "/proc/\($0)/statm" } ?? "/proc/self/statm"
        guard let statm = try? String(contentsOfFile: path, encoding: .utf8) else { return -1 }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return -1 }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }

    // MARK: - Threads

    /// A plain thread (not a Swift concurrency task) running `body`; `join`
    /// waits for it with a bound.
    final class PeerThread: Sendable {
        private let done = DispatchSemaphore(value: 0)

        init(_ body: @escaping @Sendable () -> Void) {
            let done = self.done
            Thread {
                body()
                done.signal()
            }.start()
        }

        /// Whether the thread finished within `seconds`. Can be called again.
        @discardableResult
        func join(within seconds: Double = 10) -> Bool {
            guard done.wait(timeout: .now() + seconds) == .success else { return false }
            done.signal()  // leave it finished for the next join
            return true
        }
    }
}

// MARK: - Raw sockets

/// A failed Glibc socket call.
struct RawSocketError: Error, CustomStringConvertible {
    let call: String
    let code: Int32
    var description: String { "\(call): \(String(cString: strerror(code)))" }
}

/// A blocking IPv4 TCP socket driven with plain Glibc calls: a peer that can
/// misbehave (reset, never read, never accept) in ways a Weft stream would not.
///
/// Close-on-exec: a child another suite spawns meanwhile would otherwise keep
/// the socket open, and a close (or a reset) would reach the peer only when
/// that child exits.
///
/// A class whose `close()` closes the descriptor once, however often it is
/// called: a second `close(fd)` would close whatever reused the number
/// meanwhile, in this process that runs suites in parallel a loop's socket
/// or its epoll descriptor, and libuv then aborts without a message when
/// `epoll_ctl` fails (what a test that closed its clients twice did).
final class RawSocket: Sendable {
    private let descriptor: Atomic<Int32>

    /// The descriptor; -1 once closed.
    var fd: Int32 { descriptor.load(ordering: .acquiring) }

    init(fd: Int32) {
        descriptor = Atomic(fd)
    }

    private static func check(_ result: Int32, _ call: String) throws(RawSocketError) {
        if result < 0 { throw RawSocketError(call: call, code: errno) }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private static func make() throws(RawSocketError) -> RawSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try check(fd, "socket")
        return RawSocket(fd: fd)
    }

    /// A socket bound to 127.0.0.1 on a free port, not listening: connections
    /// to that port are refused while it stays open.
    static func bound() throws(RawSocketError) -> RawSocket {
        let raw = try make()
        var address = loopback(port: 0)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(raw.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result < 0 { raw.close() }
        try check(result, "bind")
        return raw
    }

    /// A listening socket on 127.0.0.1 that nobody accepts from.
    static func listening(backlog: Int32) throws(RawSocketError) -> RawSocket {
        let raw = try bound()
        let result = Glibc.listen(raw.fd, backlog)
        if result < 0 { raw.close() }
        try check(result, "listen")
        return raw
    }

    /// A socket connected to 127.0.0.1:`port` (blocking connect).
    static func connected(to port: Int) throws(RawSocketError) -> RawSocket {
        let raw = try make()
        var address = loopback(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(raw.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result < 0 { raw.close() }
        try check(result, "connect")
        return raw
    }

    /// A non-blocking socket whose connect to 127.0.0.1:`port` was started.
    static func connecting(to port: Int) throws(RawSocketError) -> RawSocket {
        let raw = try make()
        _ = fcntl(raw.fd, F_SETFL, fcntl(raw.fd, F_GETFL) | O_NONBLOCK)
        var address = loopback(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(raw.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result < 0 && errno != EINPROGRESS {
            let code = errno
            raw.close()
            throw RawSocketError(call: "connect", code: code)
        }
        return raw
    }

    /// The local port.
    var port: Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Makes blocking receives give up after `seconds`.
    func setReceiveTimeout(seconds: Int) {
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Receives up to `count` bytes (blocking); the count, 0 at EOF, -1 on error.
    func receive(upTo count: Int) -> Int {
        var buffer = [UInt8](repeating: 0, count: count)
        return buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, count, 0) }
    }

    /// Sends all of `bytes` (blocking).
    func send(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let sent = Glibc.send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                if sent <= 0 { return }
                offset += sent
            }
        }
    }

    /// Closes with `SO_LINGER` 0: the kernel sends RST instead of FIN.
    func resetAndClose() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    /// Closes the descriptor, the first time only.
    func close() {
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { _ = Glibc.close(fd) }
    }
}

extension Future {
    /// Runs the future `next` builds from this future's success value; a failure
    /// short-circuits (`Result.flatMap` for futures of results).
    func onSuccess<T, U, E: Error, Next: Future>(
        _ next: @escaping (T) -> Next
    ) -> NetTest.AndThen<Self, Next, T, U, E> where Output == Result<T, E>, Next.Output == Result<U, E> {
        NetTest.AndThen(stage: .first(self), next: next)
    }
}
