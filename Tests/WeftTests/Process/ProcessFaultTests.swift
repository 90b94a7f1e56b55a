import Foundation
import Glibc
import Testing
import Weft

/// What can go wrong around a child: it stops reading, the process runs out of
/// descriptors.
@Suite("Child process faults")
struct ProcessFaultTests {
    @Test("a child that closes its standard input and output early: the parent's writes fail with EPIPE (no crash), its read sees end of stream, the exit is still reported")
    func childClosesItsStreamsEarly() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var command = Command("/bin/sh", arguments: ["-c", "exec 0<&- 1>&-; sleep 0.3"])
        command.standardInput = .pipe
        command.standardOutput = .pipe
        let child = try runtime.block(on: command.spawnFuture()).get()
        let input = try #require(child.standardInput)
        let output = try #require(child.standardOutput)
        let block = [UInt8](repeating: 42, count: 1 << 20)
        let (written, read) = try runtime.block(on: timeoutFuture(.seconds(20), join(
            NetTest.steps(16) { _ in input.writeAll(block) },
            output.readToEnd(limit: 1024)))).get()
        #expect(throws: WeftError.self) { try written.get() }
        if case .failure(let error) = written {
            #expect(error.code == .brokenPipe || error.code == .connectionReset, "\(error)")
        }
        #expect(try read.get() == [])
        let status = try runtime.block(on: timeoutFuture(.seconds(20), child.waitFuture())).get().get()
        #expect(status.isSuccess)
        child.standardOutput = nil
        output.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("spawning at the descriptor limit fails with EMFILE naming the executable; the loop keeps serving and spawns again once the limit is back (in a process of its own: weft-bench spawn-at-descriptor-limit)")
    func spawnAtTheDescriptorLimit() throws {
        // Lowering RLIMIT_NOFILE here would make the tests running beside this
        // one fail to open descriptors (seen under AddressSanitizer: another
        // test's uv_loop_init failed with EMFILE), so a child process lowers its own.
        let line = try Self.runWeftBench(["spawn-at-descriptor-limit"])
        #expect(line.hasPrefix("weft-bench spawn-at-descriptor-limit error=spawn: EMFILE (too many open files); executable \"/bin/true\""), "\(line)")
        #expect(line.hasSuffix(" then=exit code 0\n"), "\(line)")
    }

    @Test("a process that started with SIGCHLD blocked still sees its child exit: the spawn unblocks it on the loop thread (libuv hears of exits only through SIGCHLD: the wait hung, the child a zombie) (in a process of its own: weft-bench spawn-with-sigchld-blocked)")
    func spawnWithSIGCHLDBlocked() throws {
        let line = try Self.runWeftBench(["spawn-with-sigchld-blocked"])
        #expect(line == "weft-bench spawn-with-sigchld-blocked status=exit code 0\n", "\(line)")
    }

    @Test("dropping a SIGCHLD stream restores no disposition of SIGCHLD (libuv's child watchers own it), so with SIGCHLD streams opened and dropped over and over on one loop while another spawns and waits every wait ends (the last stream's close put back the saved SIG_DFL over the handler libuv had just installed for a spawn, and that loop never heard of an exit again) (in a process of its own: weft-bench sigchld-stream-churn)")
    func sigchldStreamsBesideSpawns() throws {
        let line = try Self.runWeftBench(["sigchld-stream-churn", "-n", "3"])
        #expect(line.hasPrefix("weft-bench sigchld-stream-churn restored=0 spawns=") && line.hasSuffix(" hung=0\n"), "\(line)")
    }

    @Test("a process that started with its standard input closed gives its children /dev/null there, not the descriptor that took number 0 (the loop's epoll, a socket) (in a process of its own: weft-bench spawn-with-stdin-closed)")
    func spawnWithStdinClosed() throws {
        let line = try Self.runWeftBench(["spawn-with-stdin-closed"])
        #expect(line == "weft-bench spawn-with-stdin-closed stdin=/dev/null\n", "\(line)")
    }

    // Before the fix that came with this test, the check before a spawn with
    // a file output decoded PATH as UTF-8 and refused the program with
    // ENOENT, where the child's execvp would have found it.
    @Test("a program found only in a PATH directory whose name is not UTF-8 is spawned with its output to a file (in a process of its own: weft-bench spawn-from-non-utf8-path)")
    func spawnFromNonUTF8Path() throws {
        let line = try Self.runWeftBench(["spawn-from-non-utf8-path"])
        #expect(line == "weft-bench spawn-from-non-utf8-path output=found\n", "\(line)")
    }

    /// Runs `weft-bench` with `arguments` (a check in a process of its own),
    /// 60 s at most, on a runtime of this thread; expects it to exit with
    /// status 0 and leave nothing open on the runtime; returns its standard
    /// output.
    static func runWeftBench(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let binary = try #require(SampleBinaries.path("weft-bench"), "weft-bench is built next to the tests")
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let output = try runtime.block(on: timeoutFuture(.seconds(60),
            Command(binary, arguments: arguments).outputFuture())).get().get()
        let line = String(decoding: output.standardOutput, as: UTF8.self)
        #expect(output.status.isSuccess, "\(line)\(String(decoding: output.standardError, as: UTF8.self))", sourceLocation: sourceLocation)
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        return line
    }
}
