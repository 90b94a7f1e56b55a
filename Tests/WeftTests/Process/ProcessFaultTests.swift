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

    @Test("spawning at the descriptor limit fails with EMFILE naming the executable; the loop keeps serving and spawns again once the limit is back")
    func spawnAtTheDescriptorLimit() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var command = Command("/bin/true")
        command.standardOutput = .pipe
        // The limit is lowered to the lowest free descriptor, only around the one
        // spawn (a few microseconds, on this thread; restored on every path), so
        // the other tests of this process are not starved for long. A descriptor
        // freed by another thread in that window could let the spawn succeed:
        // then it is tried again.
        var outcome: Result<Weft.ChildProcess, WeftError>?
        for _ in 0..<20 {
            var saved = rlimit()
            try #require(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved) == 0)
            let lowestFree = dup(0)
            try #require(lowestFree >= 0)
            close(lowestFree)
            var lowered = saved
            lowered.rlim_cur = rlim_t(lowestFree)
            let attempt: Result<Weft.ChildProcess, WeftError>
            do {
                try #require(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered) == 0)
                defer { setrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved) }
                attempt = try runtime.block(on: command.spawnFuture())
            }
            outcome = attempt
            if case .failure = attempt { break }
            _ = try runtime.block(on: timeoutFuture(.seconds(10), try attempt.get().waitFuture()))
        }
        let result = try #require(outcome)
        #expect(throws: WeftError.self) { try result.get() }
        if case .failure(let error) = result {
            #expect(error.code == .tooManyOpenFiles, "\(error)")
            #expect(error.description.contains("\"/bin/true\""), "\(error)")
        }
        // The loop serves on: a timer fires, and a spawn succeeds.
        try runtime.block(on: sleepFuture(for: .milliseconds(5)))
        let child = try runtime.block(on: command.spawnFuture()).get()
        #expect(try runtime.block(on: timeoutFuture(.seconds(10), child.waitFuture())).get().get().isSuccess)
        child.standardOutput = nil
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
