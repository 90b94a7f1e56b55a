#if Logging
import Dispatch
import Foundation
import Glibc
import Logging
import Synchronization
import Testing
import Weft
import WeftLogging

/// A log handler that keeps every record, for the tests to read.
class Recorder: LogHandler, @unchecked Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    /// `@unchecked Sendable` is sound: `records` is only touched under its
    /// mutex, and the handler's own settings are only set before it is shared.
    let records = Mutex<[Record]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let record = Record(level: event.level, message: "\(event.message)",
                            metadata: (event.metadata ?? [:]).mapValues { "\($0)" })
        records.withLock { $0.append(record) }
    }

    /// The records so far that match, once every event handed over has been
    /// written (records are written on WeftLogging's queue).
    func matching(_ predicate: (Record) -> Bool) -> [Record] {
        WeftLogging.flush()
        return records.withLock { $0.filter(predicate) }
    }
}

/// A log handler that blocks in every write until it is opened, as
/// swift-log's stream handler does on a pipe nobody reads; then records.
final class Stalled: Recorder, @unchecked Sendable {
    /// `@unchecked Sendable` is sound as the recorder's: the gate is a semaphore.
    let gate = DispatchSemaphore(value: 0)

    override func log(event: LogEvent) {
        gate.wait()
        gate.signal()  // open for good
        super.log(event: event)
    }
}

/// Runs `body` on a thread of its own, so that a test whose loop blocks can
/// fail instead of hanging; the semaphore is signalled when it returns. Not a
/// thread of Dispatch's global queue: on Linux that is Swift's cooperative
/// pool, which a loaded run can keep busy past the tests' waits.
func elsewhere(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    Thread {
        body()
        done.signal()
    }.start()
    return done
}

/// The observer is one per process, so these tests run one at a time and
/// each removes it when done; other suites running meanwhile may add records,
/// so each test looks for its own.
@Suite("WeftLogging: runtime events through swift-log", .serialized)
struct WeftLoggingTests {
    static func logging(_ body: (Recorder) throws -> Void) rethrows {
        let recorder = Recorder()
        WeftLogging.bootstrap(Logger(label: "weft-test") { _ in recorder }, blockedThreshold: .milliseconds(30))
        defer { WeftLogging.shutdown() }
        try body(recorder)
    }

    @Test("a blocked threshold of centuries (\"never\") saturates instead of trapping; a negative one is zero")
    func hugeBlockedThreshold() {
        let before = RuntimeEvents.blockedThreshold
        defer { RuntimeEvents.blockedThreshold = before }
        RuntimeEvents.blockedThreshold = .seconds(Int64.max)
        #expect(RuntimeEvents.blockedThreshold == .nanoseconds(Int64.max))
        RuntimeEvents.blockedThreshold = .seconds(-5)
        #expect(RuntimeEvents.blockedThreshold == .zero)
        RuntimeEvents.blockedThreshold = .milliseconds(250)
        #expect(RuntimeEvents.blockedThreshold == .milliseconds(250))
    }

    @Test("a stuck block(on:) is logged as an error with the runtime's diagnosis")
    func stuckIsLogged() throws {
        try Self.logging { recorder in
            let runtime = try Runtime()
            let result = Result { () throws(WeftError) in try runtime.block(on: pending(Void.self)) }
            guard case .failure(let error) = result else { Issue.record("block(on:) returned"); return }
            #expect(error.kind == .stuck)
            let records = recorder.matching { $0.message.contains("stuck") }
            #expect(records.count >= 1)
            #expect(records.first?.level == .error)
            #expect(records.first?.metadata["error"]?.contains("stuck") == true)
        }
    }

    @Test("a task that holds its loop's thread past the threshold is logged as a warning with how long")
    func blockedLoopIsLogged() throws {
        try Self.logging { recorder in
            let runtime = try Runtime()
            try runtime.block(on: pollFn { (_: inout Context) -> Poll<Void> in
                usleep(80_000)  // holds the loop's thread for 80 ms
                return .ready(())
            })
            // Other suites' loops, running meanwhile, may be held past the
            // 30 ms threshold too: this test's record is the longest hold.
            let records = recorder.matching { $0.message.contains("held") }
            let own = records.max { ($0.metadata["blocked_ms"].flatMap { Int($0) } ?? 0) < ($1.metadata["blocked_ms"].flatMap { Int($0) } ?? 0) }
            #expect(records.count >= 1)
            #expect(own?.level == .warning)
            let milliseconds = own.flatMap { $0.metadata["blocked_ms"] }.flatMap { Int($0) } ?? 0
            #expect(milliseconds >= 80, "blocked_ms: \(milliseconds)")
        }
    }

    @Test("a signal a Weft signal stream watches is logged as a notice with its number")
    func signalIsLogged() throws {
        try Self.logging { recorder in
            let runtime = try Runtime()
            var stream = signals(SIGWINCH)
            try stream.install(runtime: runtime)
            raise(SIGWINCH)
            let next = try runtime.block(on: timeoutFuture(.seconds(5), stream.next()))
            #expect((try? next.get().element) == SIGWINCH)
            let records = recorder.matching { $0.message == "signal received" && $0.metadata["signal"] == "\(SIGWINCH)" }
            #expect(records.count >= 1)
            #expect(records.first?.level == .notice)
        }
    }

    @Test("running out of descriptors on accept is an error naming the listener and the connections shed; another accept failure is a warning")
    func acceptFailuresAreLogged() {
        let recorder = Recorder()
        let logger = Logger(label: "weft-test") { _ in recorder }
        let emfile = WeftError(.libuv(code: -24), operation: "accept on 127.0.0.1:7000")
        WeftLogging.log(.acceptFailed(emfile, connectionsShed: 3), to: logger)
        WeftLogging.log(.acceptFailed(WeftError(.libuv(code: -105), operation: "accept on 127.0.0.1:7000"), connectionsShed: 0), to: logger)
        let records = recorder.matching { _ in true }
        #expect(records.count == 2)
        #expect(records.first?.level == .error)
        #expect(records.first?.metadata["connections_shed"] == "3")
        #expect(records.first?.metadata["operation"] == "accept on 127.0.0.1:7000")
        #expect(records.first?.metadata["error"]?.contains("EMFILE") == true)
        #expect(records.last?.level == .warning)
    }

    // Before the fix that came with this test, every EMFILE said waiting
    // connections were closed, also when the acceptor had no descriptor to
    // spare and closed none.
    @Test("out of descriptors with no connection shed is an error that says the connections still wait, not that they were closed")
    func outOfDescriptorsWithNothingShed() {
        let recorder = Recorder()
        let logger = Logger(label: "weft-test") { _ in recorder }
        let emfile = WeftError(.libuv(code: -24), operation: "accept on 127.0.0.1:7000")
        WeftLogging.log(.acceptFailed(emfile, connectionsShed: 0), to: logger)
        WeftLogging.log(.acceptFailed(emfile, connectionsShed: 2), to: logger)
        let records = recorder.matching { _ in true }
        #expect(records.map(\.level) == [.error, .error])
        #expect(records.map(\.message) == ["out of file descriptors on accept; connections wait in the backlog",
                                            "out of file descriptors on accept; waiting connections closed"])
        #expect(records.first?.metadata["connections_shed"] == "0")
    }

    @Test("a connection handler's failure is a warning with the error")
    func handlerFailuresAreLogged() {
        let recorder = Recorder()
        let logger = Logger(label: "weft-test") { _ in recorder }
        WeftLogging.log(.connectionHandlerFailed("Refused()"), to: logger)
        let records = recorder.matching { _ in true }
        #expect(records.count == 1)
        #expect(records.first?.level == .warning)
        #expect(records.first?.metadata["error"] == "Refused()")
    }

    @Test("a log handler that blocks holds up no loop: a watched signal is delivered and a sleep ends while it waits, and the records come once it returns (the loop's thread blocked in the handler, its signal stream never yielded)")
    func blockingHandlerHoldsNoLoop() throws {
        let handler = Stalled()
        WeftLogging.bootstrap(Logger(label: "weft-test") { _ in handler })
        defer { WeftLogging.shutdown() }
        let worked = Mutex(false)
        let thread = elsewhere {
            do {
                let runtime = try Runtime()
                var stream = signals(SIGWINCH)
                try stream.install(runtime: runtime)
                raise(SIGWINCH)
                let next = try runtime.block(on: timeoutFuture(.seconds(5), stream.next())).get()
                try runtime.block(on: sleepFuture(for: .milliseconds(20)))
                worked.withLock { $0 = next.0 == SIGWINCH }
            } catch {
                Issue.record("\(error)")
            }
        }
        let finished = thread.wait(timeout: .now() + 10) == .success
        handler.gate.signal()
        #expect(finished, "the loop was held by the handler")
        #expect(worked.withLock { $0 })
        if !finished { _ = thread.wait(timeout: .now() + 10) }
        let records = handler.matching { $0.message == "signal received" && $0.metadata["signal"] == "\(SIGWINCH)" }
        #expect(records.count >= 1)
    }

    @Test("events past the 1,024 waiting for a blocked handler are dropped, and the next record says how many")
    func eventsPastTheLimitAreDropped() throws {
        let handler = Stalled()
        WeftLogging.bootstrap(Logger(label: "weft-test") { _ in handler })
        let thread = elsewhere {
            do {
                let runtime = try Runtime()
                for _ in 0..<2_000 {  // each a stuck block(on:), each an event
                    _ = Result { () throws(WeftError) in try runtime.block(on: pending(Void.self)) }
                }
            } catch {
                Issue.record("\(error)")
            }
        }
        let finished = thread.wait(timeout: .now() + 20) == .success
        WeftLogging.shutdown()  // no event after this one's
        handler.gate.signal()
        #expect(finished, "the loop was held by the handler")
        if !finished { _ = thread.wait(timeout: .now() + 10) }
        let dropped = handler.matching { $0.message.contains("dropped") }
        #expect(dropped.count >= 1)
        #expect((dropped.first?.metadata["dropped"].flatMap { Int($0) } ?? 0) >= 2_000 - 1_024, "\(dropped)")
        #expect(handler.matching { !$0.message.contains("dropped") }.count <= 1_024)
    }

    @Test("after shutdown nothing is logged")
    func shutdownStopsLogging() throws {
        let recorder = Recorder()
        WeftLogging.bootstrap(Logger(label: "weft-test") { _ in recorder })
        WeftLogging.shutdown()
        let runtime = try Runtime()
        _ = Result { () throws(WeftError) in try runtime.block(on: pending(Void.self)) }
        #expect(recorder.matching { $0.message.contains("stuck") }.isEmpty)
    }
}
#endif
