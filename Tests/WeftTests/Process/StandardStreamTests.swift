import Glibc
import CLibUV
import Testing
@testable import Weft

/// The process's standard streams opened in this process. Descriptor 0 is
/// swapped for a pipe for the test's duration (no test reads standard input)
/// and put back after.
@Suite("Standard streams", .serialized)
struct StandardStreamTests {
    /// Runs `body` with descriptor 0 the read end of a new blocking pipe; the
    /// write end goes to `body`.
    static func withPipeAsStandardInput(_ body: (Int32) throws -> Void) throws {
        var ends: [Int32] = [-1, -1]
        try #require(closeOnExecPipe(&ends) == 0)
        try withStandardInput(ends, body)
    }

    static func isNonBlocking(_ descriptor: Int32) -> Bool {
        fcntl(descriptor, F_GETFL) & O_NONBLOCK != 0
    }

    /// Runs `body` with descriptor 0 one end of a new Unix socket pair (a
    /// pipe that cannot be reopened through `/proc`); the other end goes to `body`.
    static func withSocketAsStandardInput(_ body: (Int32) throws -> Void) throws {
        var ends: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0)
        try withStandardInput(ends, body)
    }

    /// ``withPipeAsStandardInput(_:)`` for a body that awaits.
    static func withPipeAsStandardInput(_ body: (Int32) async throws -> Void) async throws {
        var ends: [Int32] = [-1, -1]
        try #require(closeOnExecPipe(&ends) == 0)
        let saved = try redirectStandardInput(to: ends)
        defer { restoreStandardInput(saved, closing: ends) }
        try await body(ends[1])
    }

    /// Runs `body` with descriptor 0 a copy of `ends[0]` and `ends[1]` given
    /// to it; then puts descriptor 0 back and closes both ends.
    private static func withStandardInput(_ ends: [Int32], _ body: (Int32) throws -> Void) throws {
        let saved = try redirectStandardInput(to: ends)
        defer { restoreStandardInput(saved, closing: ends) }
        try body(ends[1])
    }

    /// Makes descriptor 0 a copy of `ends[0]` and returns a copy of what it
    /// was, for ``restoreStandardInput(_:closing:)``; on failure closes both ends.
    private static func redirectStandardInput(to ends: [Int32]) throws -> Int32 {
        let saved = fcntl(0, F_DUPFD_CLOEXEC, 0)
        guard saved >= 0, dup2(ends[0], 0) == 0 else {
            let failure = DescriptorSwapFailed(errno: errno)
            restoreStandardInput(saved, closing: ends)
            throw failure
        }
        return saved
    }

    struct DescriptorSwapFailed: Error {
        let errno: Int32
    }

    /// Puts back descriptor 0 as `saved` was (when it was saved), and closes `ends`.
    private static func restoreStandardInput(_ saved: Int32, closing ends: [Int32]) {
        if saved >= 0 {
            dup2(saved, 0)
            close(saved)
        }
        close(ends[0])
        close(ends[1])
    }

    // Before the fix that came with this test, each threw CancellationError: a
    // task nobody cancelled was told it was, where a pipe's read throws .closed.
    @Test("a standard stream's async read, write, flush and shutdown, from a task still bound to its loop after the loop shut down, throw .closed naming the operation, not CancellationError")
    func asyncOperationsAfterItsLoopShutDown() async throws {
        try await Self.withPipeAsStandardInput { _ in
            let loop = try LoopThread()
            let input = try await awaitWithin(.seconds(20), loop.spawn { try StandardStream.input() })
            await shutDownOffThePool(loop)
            let outcomes = try await awaitWithin(.seconds(20), Task(executorPreference: loop.taskExecutor) { () async -> [String] in
                func outcome(_ body: () async throws -> Void) async -> String {
                    do {
                        try await body()
                        return "no error"
                    } catch let error as WeftError {
                        return "\(error.kind) \(error.operation)"
                    } catch {
                        return "\(type(of: error))"
                    }
                }
                return [
                    await outcome { _ = try await input.read() },
                    await outcome { try await input.write([1]) },
                    await outcome { try await input.flush() },
                    await outcome { try await input.shutdown() },
                ]
            })
            #expect(outcomes == ["closed read", "closed write", "closed flush", "closed shutdown"])
            // Checked while descriptor 0 is still the pipe (it was checked
            // after the pipe had been put back, on whatever descriptor 0 was
            // before, and passed whatever the stream did). The shutdown does
            // not close a stream held outside the loop's tasks: its close,
            // with the loop gone, puts the mode back.
            #expect(Self.isNonBlocking(0), "the stream is open: the pipe is the stream's")
            input.close()
            #expect(!Self.isNonBlocking(0), "the closed stream put the pipe's mode back")
        }
    }

    @Test("standard input on a pipe reads what is written to it; two streams on one pipe leave it non-blocking until the last closes, which makes it blocking again")
    func twoStreamsOnOnePipe() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        try Self.withPipeAsStandardInput { writer in
            #expect(!Self.isNonBlocking(0))
            let first = try StandardStream.input(runtime: runtime)
            let second = try StandardStream.input(runtime: runtime)
            #expect(first.kind == .pipe && second.kind == .pipe)
            #expect(Self.isNonBlocking(0))  // libuv's, on the shared description
            #expect(write(writer, "piped\n", 6) == 6)
            #expect(try runtime.block(on: timeoutFuture(.seconds(5), first.readFuture())).get().get() == Array("piped\n".utf8))
            first.close()
            #expect(Self.isNonBlocking(0), "the other stream still reads the pipe from its loop")
            second.close()
            second.close()  // idempotent: counted once
            #expect(!Self.isNonBlocking(0))
            #expect(fcntl(0, F_GETFD) != -1, "descriptor 0 stays open")
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a child spawned with inherited standard streams leaves the parent's standard input non-blocking under its StandardStream, and still reads it: libuv's child makes its descriptors 0-2 blocking, which made the description the parent shares blocking (a pipe is now reopened for the child; a socket's mode is set back after the spawn)")
    func childWithInheritedStandardInput() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        try Self.withPipeAsStandardInput { writer in
            let input = try StandardStream.input(runtime: runtime)
            defer { input.close() }
            #expect(Self.isNonBlocking(0))
            #expect(try runtime.block(on: timeoutFuture(.seconds(10), Command("/bin/true").statusFuture())).get().get().isSuccess)
            #expect(Self.isNonBlocking(0), "the child made the parent's pipe blocking")
            #expect(write(writer, "to the child\n", 13) == 13)
            var head = Command("/usr/bin/head", arguments: ["-n", "1"])
            head.standardOutput = .pipe
            let child = try runtime.block(on: head.spawnFuture()).get()
            let line = try runtime.block(on: timeoutFuture(.seconds(10), child.standardOutput!.readToEnd())).get().get()
            #expect(String(decoding: line, as: UTF8.self) == "to the child\n", "the child reads the same pipe")
            #expect(try runtime.block(on: timeoutFuture(.seconds(10), child.waitFuture())).get().get().isSuccess)
            child.standardOutput = nil
            #expect(Self.isNonBlocking(0))
        }
        try Self.withSocketAsStandardInput { _ in
            let input = try StandardStream.input(runtime: runtime)
            defer { input.close() }
            #expect(input.kind == .pipe && Self.isNonBlocking(0))
            #expect(try runtime.block(on: timeoutFuture(.seconds(10), Command("/bin/true").statusFuture())).get().get().isSuccess)
            #expect(Self.isNonBlocking(0), "the child made the parent's socket blocking")
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a standard stream opened on a pipe between a spawn's look at its descriptors' modes and the spawn stays non-blocking: the child, handed the pipe as it was (found blocking), made it blocking under the stream's loop; with a non-blocking socket also handed over (the spawn under the lock) and without", arguments: [false, true])
    func streamOpenedBetweenTheLookAndTheSpawn(withSocketToSetBack: Bool) throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var sockets: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sockets) == 0)
        defer { sockets.forEach { close($0) } }
        DescriptorMode.setNonBlocking(sockets[0], true)
        try Self.withPipeAsStandardInput { _ in
            var inherited = InheritedDescriptors()
            #expect(inherited.forChild(0) == 0, "a blocking pipe is handed over as it is")
            if withSocketToSetBack { #expect(inherited.forChild(sockets[0]) == sockets[0]) }
            // Another thread's, between the look and the spawn.
            let input = try StandardStream.input(runtime: runtime)
            defer { input.close() }
            #expect(Self.isNonBlocking(0))
            // What libuv's child does to the descriptors it is given, before its exec.
            try inherited.spawnRestoringModes { () throws(WeftError) in
                DescriptorMode.setNonBlocking(0, false)
                if withSocketToSetBack { DescriptorMode.setNonBlocking(sockets[0], false) }
            }
            #expect(Self.isNonBlocking(0), "the child's change stayed under the stream")
            #expect(Self.isNonBlocking(sockets[0]))
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a read of 0 bytes returns nothing at once, as a TCP stream's, with nothing written to standard input; a later read still gets the bytes")
    func readOfNothing() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        try Self.withPipeAsStandardInput { writer in
            let input = try StandardStream.input(runtime: runtime)
            defer { input.close() }
            let nothing = try runtime.block(on: timeoutFuture(.seconds(2), input.readFuture(upTo: 0)))
            #expect(try nothing.get().get() == [], "\(nothing)")
            #expect(write(writer, "later\n", 6) == 6)
            #expect(try runtime.block(on: timeoutFuture(.seconds(5), input.readFuture())).get().get() == Array("later\n".utf8))
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
