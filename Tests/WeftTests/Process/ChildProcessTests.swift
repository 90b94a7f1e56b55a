import Foundation
import Glibc
import Synchronization
import Testing
@testable import Weft

/// Child processes: spawn, pipes both ways, exits and signals, environment and
/// working directory, reaping.
@Suite("Child processes")
struct ChildProcessTests {
    /// Runs `future` on `runtime` for at most 20 s.
    /// Polls `base` once, then holds the thread for `pause`, under a second
    /// (so that what the poll started, a child, runs meanwhile), then goes on
    /// polling it.
    struct PausedAfterFirstPoll<Base: Future>: Future {
        var base: Base
        let pause: Duration
        var paused = false

        mutating func poll(_ context: inout Context) -> Poll<Base.Output> {
            let result = base.poll(&context)
            if !paused {
                paused = true
                // Slept again after a signal (the child's SIGCHLD) cut it short.
                let end = ContinuousClock.now + pause
                while case let left = end - ContinuousClock.now, left > .zero {
                    usleep(UInt32(left / .microseconds(1)))
                }
            }
            return result
        }
    }

    static func run<F: Future>(_ runtime: Runtime, _ future: F) throws -> F.Output {
        try runtime.block(on: timeoutFuture(.seconds(20), future)).get()
    }

    /// Whether `pid` is still a child of this process that nobody reaped (a
    /// zombie, or running): `waitid` does not answer `ECHILD`. Asked with
    /// `WNOWAIT`, so asking never reaps it: a `waitpid` here took the exit
    /// status of a child that had just died before libuv's SIGCHLD handler
    /// could, whose process handle then never heard of the exit and stayed open.
    static func isUnreapedChild(_ pid: Int32) -> Bool {
        var info = siginfo_t()
        return !(waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == -1 && errno == ECHILD)
    }

    @Test("1 MiB fed to cat's standard input and shut down comes back exactly on its standard output; it exits with 0")
    func catEchoesOneMebibyte() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var command = Command("/bin/cat")
        command.standardInput = .pipe
        command.standardOutput = .pipe
        let child = try Self.run(runtime, command.spawnFuture()).get()
        #expect(child.processID > 0)
        let input = try #require(child.standardInput)
        let output = try #require(child.standardOutput)
        let sent = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ ($0 >> 9)) }
        let (written, received) = try Self.run(runtime, join(
            input.writeAll(sent).then { _ in input.shutdownFuture() },
            output.readToEnd(limit: 4 << 20)))
        try written.get()
        #expect(try received.get() == sent)
        let status = try Self.run(runtime, child.waitFuture()).get()
        #expect(status.isSuccess && status.exitCode == 0 && status.signal == nil)
        child.standardOutput = nil
        input.close()
        output.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        #expect(!Self.isUnreapedChild(child.processID))
    }

    @Test("exit codes and deaths by signal are reported as such")
    func exitCodesAndSignals() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let three = try Self.run(runtime, Command("/bin/sh", arguments: ["-c", "exit 3"]).statusFuture()).get()
        #expect(three.exitCode == 3 && three.signal == nil && !three.isSuccess)
        #expect(three.description == "exit code 3")
        let terminated = try Self.run(runtime, Command("/bin/sh", arguments: ["-c", "kill -TERM $$"]).statusFuture()).get()
        #expect(terminated.signal == SIGTERM && terminated.exitCode == nil)
        #expect(terminated.description == "killed by signal 15")
        let fine = try Self.run(runtime, Command("/bin/true").statusFuture()).get()
        #expect(fine.isSuccess)
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("status() of a command whose output and errors are pipes: a child writing more than a pipe holds ends (its pipes are closed: SIGPIPE) instead of waiting for ever")
    func statusWithPipedOutput() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        for stream in ["1", "2"] {
            var command = Command("/bin/sh", arguments: ["-c", "head -c 1000000 /dev/zero >&\(stream)"])
            command.standardOutput = .pipe
            command.standardError = .pipe
            let exit = try Self.run(runtime, command.statusFuture()).get()
            #expect(!exit.isSuccess, "\(stream): \(exit)")  // head died of SIGPIPE: the shell reports it
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("200 concurrent /bin/true children all exit with 0 and none is left unreaped")
    func twoHundredConcurrentChildren() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var command = Command("/bin/true")
        command.standardInput = .null
        let children = try (0..<200).map { _ in try Self.run(runtime, command.spawnFuture()).get() }
        let statuses = try Self.run(runtime, joinAll(children.map { $0.waitFuture() }))
        #expect(statuses.count == 200)
        #expect(try statuses.allSatisfy { try $0.get().isSuccess })
        #expect(Set(children.map(\.processID)).count == 200)
        let unreaped = children.map(\.processID).filter(Self.isUnreapedChild)
        #expect(unreaped.isEmpty, "unreaped children: \(unreaped)")
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a sleeping child killed with SIGKILL (and one with SIGTERM) reports that signal at once")
    func killingASleepingChild() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        for signal in [SIGKILL, SIGTERM] {
            let child = try Self.run(runtime, Command("/bin/sleep", arguments: ["30"]).spawnFuture()).get()
            let start = ContinuousClock.now
            try child.kill(signal: signal)
            let status = try Self.run(runtime, child.waitFuture()).get()
            #expect(status.signal == signal)
            #expect(ContinuousClock.now - start < .seconds(5))
            #expect(!Self.isUnreapedChild(child.processID))
            try child.kill()  // after the exit: nothing happens
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a variable removed then set again is listed once, where it was first set")
    func environmentRemovedThenSet() {
        var command = Command("/usr/bin/env")
        command.clearEnvironment()
        command.setEnvironment("A", to: "1")
        command.setEnvironment("B", to: "2")
        command.removeEnvironment("A")
        command.setEnvironment("A", to: "3")
        #expect(command.environment == ["A=3", "B=2"])
        command.removeEnvironment("B")
        #expect(command.environment == ["A=3"])
    }

    @Test("inherited variables reach the child byte for byte: not UTF-8, names differing only in Unicode normalization, a value starting with a combining mark")
    func environmentBytes() throws {
        let inherited: [[UInt8]] = [
            [0x52, 0x41, 0x57, 0x3D, 0x41, 0xFF, 0x42],  // RAW=A\xFFB
            Array("X=\u{301}value".utf8),
            Array("\u{E9}=precomposed".utf8),
            Array("e\u{301}=decomposed".utf8),
            Array("NOEQUALS".utf8),
        ]
        // A NULL-terminated list of C strings, as `environ`.
        var pointers: [UnsafeMutablePointer<CChar>?] = inherited.map { entry in
            let string = UnsafeMutablePointer<CChar>.allocate(capacity: entry.count + 1)
            for (index, byte) in (entry + [0]).enumerated() { string[index] = CChar(bitPattern: byte) }
            return string
        } + [nil]
        defer { for string in pointers { string?.deallocate() } }
        var command = Command("/usr/bin/env")
        command.setEnvironment("SET", to: "yes")
        let entries = pointers.withUnsafeMutableBufferPointer { command.environmentEntries(inheriting: $0.baseAddress) }
        #expect(entries == Array(inherited.prefix(4)) + [Array("SET=yes".utf8)])
    }

    @Test("the environment (set, removed, cleared) and the working directory reach the child")
    func environmentAndWorkingDirectory() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let directory = FileManager.default.temporaryDirectory.resolvingSymlinksInPath().path
        var command = Command("/bin/sh", arguments: ["-c", "echo \"$WEFT_CHILD_VARIABLE|${HOME-unset}|$(pwd)\""])
        command.setEnvironment("WEFT_CHILD_VARIABLE", to: "a value with spaces")
        command.removeEnvironment("HOME")
        command.workingDirectory = directory
        let output = try Self.run(runtime, command.outputFuture()).get()
        #expect(String(decoding: output.standardOutput, as: UTF8.self) == "a value with spaces|unset|\(directory)\n")
        #expect(output.status.isSuccess)
        #expect(command.environment.contains("WEFT_CHILD_VARIABLE=a value with spaces"))
        #expect(command.environment.contains("PATH=\(ProcessInfo.processInfo.environment["PATH"] ?? "")"))

        var cleared = Command("/usr/bin/env")
        cleared.clearEnvironment()
        cleared.setEnvironment("ONLY", to: "this")
        let env = try Self.run(runtime, cleared.outputFuture()).get()
        #expect(String(decoding: env.standardOutput, as: UTF8.self) == "ONLY=this\n")
        #expect(cleared.environment == ["ONLY=this"])
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("output() collects standard output and error apart, with the exit code; past its limit the child is killed and it fails with ENOBUFS")
    func outputAndItsLimit() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let output = try Self.run(runtime, Command("/bin/sh", arguments: ["-c", "echo out; echo err >&2; exit 2"]).outputFuture()).get()
        #expect(output.standardOutput == Array("out\n".utf8))
        #expect(output.standardError == Array("err\n".utf8))
        #expect(output.status.exitCode == 2)
        let tooMuch = try Self.run(runtime, Command("/bin/sh", arguments: ["-c", "head -c 100000 /dev/zero; sleep 30"]).outputFuture(limit: 1000))
        #expect(throws: WeftError.self) { try tooMuch.get() }
        if case .failure(let error) = tooMuch {
            #expect(error.name == "ENOBUFS")
            #expect(error.description.contains("more than 1000 bytes"))
            #expect(error.description.contains("it was killed"))
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    // Before the fix that came with this test, it said "it was killed" of a
    // child that had exited: the kill did nothing, and the status was lost.
    @Test("output() past its limit from a child that had exited already (its output and its exit in one turn of the loop) says so, with its status, rather than that it was killed")
    func outputPastItsLimitAfterTheExit() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        // The child writes 2,000 bytes (which the pipe holds) and exits while
        // the loop's thread is held after the spawn; its output and its exit
        // then come in the next turn. An attempt whose child took longer
        // than the half second to exit is tried again.
        let error = try onTimeInOneOf({ () throws -> WeftError? in
            let output = PausedAfterFirstPoll(base: Command("/usr/bin/head", arguments: ["-c", "2000", "/dev/zero"]).outputFuture(limit: 1000),
                                              pause: .milliseconds(500))
            return try Self.run(runtime, output).failure
        }, isOnTime: { $0?.description.contains("it was killed") == false })
        #expect(error?.name == "ENOBUFS", "\(String(describing: error))")
        #expect(error?.description.contains("more than 1000 bytes to its standard output; it had exited already (exit code 0)") == true,
                "\(String(describing: error))")
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("standard streams to files, /dev/null and a descriptor: the child reads a file and writes another, writes to a pipe of the parent's; a missing input file fails naming it")
    func filesAsStandardStreams() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let base = NSTemporaryDirectory() + "weft-process-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: base + ".in"); try? FileManager.default.removeItem(atPath: base + ".out") }
        try Data("from a file\n".utf8).write(to: URL(fileURLWithPath: base + ".in"))
        var command = Command("/bin/cat")
        command.standardInput = .file(path: base + ".in")
        command.standardOutput = .file(path: base + ".out")
        command.standardError = .null
        #expect(try Self.run(runtime, command.statusFuture()).get().isSuccess)
        #expect(try String(contentsOfFile: base + ".out", encoding: .utf8) == "from a file\n")
        // A descriptor of the parent's: the child writes to a pipe made here.
        var descriptors: [Int32] = [-1, -1]
        #expect(closeOnExecPipe(&descriptors) == 0)
        var echo = Command("/bin/echo", arguments: ["through a descriptor"])
        echo.standardOutput = .descriptor(descriptors[1])
        #expect(try Self.run(runtime, echo.statusFuture()).get().isSuccess)
        close(descriptors[1])
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(descriptors[0], &buffer, buffer.count)
        close(descriptors[0])
        #expect(String(decoding: buffer[..<max(0, count)], as: UTF8.self) == "through a descriptor\n")
        command.standardInput = .file(path: base + ".missing")
        let missing = try Self.run(runtime, command.statusFuture())
        #expect(throws: WeftError.self) { try missing.get() }
        if case .failure(let error) = missing {
            #expect(error.code == .notFound && error.description.contains(".missing"))
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a FIFO as a standard stream is opened without waiting for its other end (the open held the loop thread for ever): as output with no reader the spawn fails with ENXIO naming it, as input with no writer the child reads end of stream")
    func fifoAsStandardStream() throws {
        let fifo = NSTemporaryDirectory() + "weft-fifo-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let outcomes = Mutex<(writer: Result<ProcessExitStatus, WeftError>?, reader: Result<ProcessOutput, WeftError>?)>((nil, nil))
        let ended = returnsOnAThreadOfItsOwn(within: .seconds(60)) {
            guard let runtime = try? Runtime() else { return }
            var writer = Command("/bin/echo", arguments: ["hi"])
            writer.standardOutput = .file(path: fifo)
            var reader = Command("/bin/cat")
            reader.standardInput = .file(path: fifo)
            reader.standardOutput = .pipe
            let writing = try? Self.run(runtime, writer.statusFuture())
            outcomes.locked { $0.writer = writing }
            let reading = try? Self.run(runtime, reader.outputFuture())
            outcomes.locked { $0.reader = reading }
        }
        #expect(ended, "a spawn with a FIFO as a standard stream held the loop thread")
        let (writing, reading) = outcomes.locked { $0 }
        if case .failure(let error)? = writing {
            #expect(error.name == "ENXIO" && error.description.contains(fifo), "\(error)")
        } else {
            Issue.record("a FIFO with no reader took the output, or the spawn timed out: \(String(describing: writing))")
        }
        let output = try #require(try reading?.get())
        #expect(output.status.isSuccess && output.standardOutput.isEmpty, "\(output)")
    }

    @Test("a missing executable fails with ENOENT naming it, and the loop keeps serving")
    func missingExecutable() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var command = Command("/nonexistent/weft-no-such-program")
        command.standardOutput = .pipe
        let result = try Self.run(runtime, command.spawnFuture())
        #expect(throws: WeftError.self) { try result.get() }
        if case .failure(let error) = result {
            #expect(error.code == .notFound)
            #expect(error.name == "ENOENT")
            #expect(error.description.contains("\"/nonexistent/weft-no-such-program\""), "\(error)")
        }
        let byName = try Self.run(runtime, Command("weft-no-such-program-\(getpid())").spawnFuture())
        if case .failure(let error) = byName { #expect(error.code == .notFound) } else { Issue.record("spawned a missing program") }
        #expect(try Self.run(runtime, Command("true").statusFuture()).get().isSuccess, "found in PATH")
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("an argument, or a standard stream's file path, holding a NUL byte fails the spawn with invalidArgument, naming the executable, before any file is opened; nothing is left open")
    func nulByteInAnArgument() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var command = Command("/bin/echo", arguments: ["a\u{0}b"])
        command.standardOutput = .pipe
        let result = try Self.run(runtime, command.spawnFuture())
        guard case .failure(let error) = result else {
            Issue.record("spawned with a NUL byte in an argument")
            return
        }
        #expect(error.code == .invalidArgument)
        #expect(error.description.contains("\"/bin/echo\""), "\(error)")
        // A standard stream's file path with a NUL: refused before any file is
        // opened (C cut it there: `victim` was opened and truncated).
        try FileTest.withTemporaryDirectory { directory in
            let victim = directory + "/victim"
            try runtime.block(on: FileSystem.writeFileFuture(victim, contents: Array("kept".utf8))).get()
            var toFile = Command("/bin/echo", arguments: ["x"])
            toFile.standardOutput = .file(path: victim + "\u{0}.log")
            let refused = try Self.run(runtime, toFile.statusFuture())
            #expect(refused.failure?.code == .invalidArgument, "\(refused)")
            var badArgument = Command("/bin/echo", arguments: ["a\u{0}b"])
            badArgument.standardError = .file(path: victim)
            #expect(try Self.run(runtime, badArgument.statusFuture()).failure?.code == .invalidArgument)
            #expect(try runtime.block(on: FileSystem.readFileFuture(victim)).get() == Array("kept".utf8))
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("an environment variable name that is empty or holds \"=\" fails the spawn with invalidArgument naming it (setting \"A=B\" to \"x\" gave the child A=\"B=x\"); nothing is left open")
    func badEnvironmentVariableNames() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        for name in ["A=B", "", "=A"] {
            var command = Command("/usr/bin/env")
            command.clearEnvironment()
            command.setEnvironment(name, to: "x")
            let result = try Self.run(runtime, command.outputFuture())
            guard case .failure(let error) = result else {
                Issue.record("spawned with the variable name \(name.debugDescription): \(result)")
                continue
            }
            #expect(error.code == .invalidArgument, "\(error)")
            #expect(error.description.contains(name.debugDescription) && error.description.contains("\"/usr/bin/env\""), "\(error)")
        }
        var removing = Command("/bin/true")
        removing.removeEnvironment("PATH=/bin")
        #expect(try Self.run(runtime, removing.statusFuture()).failure?.code == .invalidArgument)
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a spawn that cannot start (no such program, by path or in PATH; a file that is not executable; no such working directory) fails as libuv would and leaves an output file as it was: it was truncated before uv_spawn failed")
    func failedSpawnLeavesOutputFileAlone() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        try FileTest.withTemporaryDirectory { directory in
            let kept = directory + "/kept.log"
            let contents = Array("kept".utf8)
            try runtime.block(on: FileSystem.writeFileFuture(kept, contents: contents)).get()
            let missing = Command(directory + "/no-such-program")
            let byName = Command("weft-no-such-program-\(getpid())")
            let notExecutable = Command(kept)  // written 0644
            var noDirectory = Command("/bin/echo", arguments: ["x"])
            noDirectory.workingDirectory = directory + "/no-such-directory"
            let expected: [WeftError.Code] = [.notFound, .notFound, .permissionDenied, .notFound]
            for (index, var command) in [missing, byName, notExecutable, noDirectory].enumerated() {
                command.standardOutput = .file(path: kept)
                command.standardError = .file(path: kept)
                let result = try Self.run(runtime, command.statusFuture())
                #expect(result.failure?.code == expected[index], "\(command.executable): \(result)")
                #expect(result.failure?.description.contains(command.executable.debugDescription) == true, "\(result)")
                #expect(try runtime.block(on: FileSystem.readFileFuture(kept)).get() == contents,
                        "\(command.executable): the output file was truncated by a spawn that failed")
            }
            // And one that starts still truncates it.
            var starts = Command("/bin/echo", arguments: ["new"])
            starts.standardOutput = .file(path: kept)
            #expect(try Self.run(runtime, starts.statusFuture()).get().isSuccess)
            #expect(try runtime.block(on: FileSystem.readFileFuture(kept)).get() == Array("new\n".utf8))
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    // Before the fix that came with this test, libuv refused -1 alone: the
    // child got /dev/null for any other negative descriptor, and its output
    // went nowhere while the spawn succeeded.
    @Test("a standard stream set to a negative descriptor fails the spawn with EINVAL naming the stream, as -1 does")
    func negativeDescriptors() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        for descriptor: Int32 in [-1, -2, -9, .min] {
            var command = Command("/bin/echo", arguments: ["x"])
            command.standardOutput = .descriptor(descriptor)
            let result = try Self.run(runtime, command.statusFuture())
            #expect(result.failure?.code == .invalidArgument, "descriptor \(descriptor): \(result)")
            #expect(result.failure?.name == "EINVAL", "descriptor \(descriptor): \(result)")
        }
        var input = Command("/bin/cat")
        input.standardInput = .descriptor(-5)
        let refused = try Self.run(runtime, input.statusFuture())
        #expect(refused.failure?.description.contains("standard input is descriptor -5") == true, "\(refused)")
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    // Before the fix that came with this test, the paths were compared as
    // Swift strings, which call a precomposed and a decomposed "é" equal:
    // standard error went into standard output's file, and its own file was
    // never made.
    @Test("standard output and error set to paths that differ in bytes but not in Unicode normalization are two files")
    func outputAndErrorToTwoFilesSwiftCallsEqual() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        try FileTest.withTemporaryDirectory { directory in
            let composed = directory + "/caf\u{E9}", decomposed = directory + "/cafe\u{301}"
            #expect(composed == decomposed, "Swift no longer calls them equal: the test tests nothing")
            var command = Command("/bin/sh", arguments: ["-c", "echo out; echo err >&2"])
            command.standardOutput = .file(path: composed)
            command.standardError = .file(path: decomposed)
            #expect(try Self.run(runtime, command.statusFuture()).get().isSuccess)
            let output = try runtime.block(on: FileSystem.readFileFuture(composed)).get()
            let error = try runtime.block(on: FileSystem.readFileFuture(decomposed))
            #expect(output == Array("out\n".utf8))
            #expect((try? error.get()) == Array("err\n".utf8), "\(error)")
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("standard output and error set to one path share one descriptor (>f 2>&1): what the child writes to each lands in order, none over the other (opened twice, each wrote from the start of the file)")
    func outputAndErrorToOneFile() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        try FileTest.withTemporaryDirectory { directory in
            let log = directory + "/both.log"
            try runtime.block(on: FileSystem.writeFileFuture(log, contents: Array("old contents, longer than the new\n".utf8))).get()
            var command = Command("/bin/sh", arguments: ["-c", "echo out; echo err >&2; echo out2"])
            command.standardOutput = .file(path: log)
            command.standardError = .file(path: log)
            #expect(try Self.run(runtime, command.statusFuture()).get().isSuccess)
            let written = String(decoding: try runtime.block(on: FileSystem.readFileFuture(log)).get(), as: UTF8.self)
            #expect(written == "out\nerr\nout2\n")
        }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a dropped ChildProcess leaves its child running and still reaps it; with killOnDrop it is killed and reaped")
    func dropBehaviour() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var short = Command("/bin/sleep", arguments: ["0.2"])
        short.standardInput = .null
        let runningPID = try Self.run(runtime, short.spawnFuture()).get().processID  // dropped at once
        #expect(kill(runningPID, 0) == 0, "the dropped child still runs")
        var long = Command("/bin/sleep", arguments: ["30"])
        long.killOnDrop = true
        let killedPID = try Self.run(runtime, long.spawnFuture()).get().processID
        let start = ContinuousClock.now
        while (Self.isUnreapedChild(runningPID) || Self.isUnreapedChild(killedPID)) && ContinuousClock.now - start < .seconds(10) {
            try runtime.block(on: sleepFuture(for: .milliseconds(20)))
        }
        #expect(!Self.isUnreapedChild(runningPID), "the dropped child was reaped")
        #expect(!Self.isUnreapedChild(killedPID), "the killOnDrop child was killed and reaped")
        #expect(ContinuousClock.now - start < .seconds(5))
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    /// The threads of this process blocked in `waitpid` (the kernel's
    /// `do_wait`), read from `/proc/self/task/*/wchan`.
    static func threadsInWaitpid() -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.count { task in
            (try? String(contentsOfFile: "/proc/self/task/\(task)/wchan", encoding: .utf8)) == "do_wait"
        }
    }

    // Before the fix that came with this test, each abandoned child had a
    // thread of its own blocked in waitpid until the child exited: 64 here,
    // a thousand for a thousand (and a child whose thread could not be
    // created stayed a zombie without a word).
    @Test("64 children abandoned by a runtime's shutdown are all reaped by one reaper thread: none of this process's threads waits in waitpid for them")
    func manyAbandonedChildrenOneReaper() throws {
        var runtime: Runtime? = try Runtime()
        var pids: [Int32] = []
        for _ in 0..<64 {
            var command = Command("/bin/sleep", arguments: ["1"])
            command.standardInput = .null
            pids.append(try runtime!.block(on: command.spawnFuture()).get().processID)
        }
        try runtime!.shutdown()
        runtime = nil
        usleep(200_000)  // time for a thread per child, if that is how they are reaped
        let waiting = Self.threadsInWaitpid()
        #expect(waiting < 8, "\(waiting) threads wait in waitpid")
        let start = ContinuousClock.now
        while pids.contains(where: Self.isUnreapedChild) && ContinuousClock.now - start < .seconds(15) {
            usleep(20_000)
        }
        #expect(pids.filter(Self.isUnreapedChild).isEmpty, "children left unreaped")
    }

    @Test("a runtime shut down with a child still running hands it to a reaper; waiting then fails with shutDown")
    func shutdownWithARunningChild() throws {
        try FileTest.withTemporaryDirectory { directory in
            // The child leaves proof that it ran to its end: a file created
            // after its 0.3 s sleep, which a child killed at the shutdown never
            // writes (however long the test itself takes to get there).
            let proof = directory + "/ran-to-its-end"
            var runtime: Runtime? = try Runtime()
            var command = Command("/bin/sh", arguments: ["-c", "sleep 0.3; : > \"$1\"", "sh", proof])
            command.standardInput = .null
            let child = try runtime!.block(on: command.spawnFuture()).get()
            let pid = child.processID
            try runtime!.shutdown()
            runtime = nil
            let start = ContinuousClock.now
            while Self.isUnreapedChild(pid) && ContinuousClock.now - start < .seconds(10) {
                usleep(20_000)
            }
            #expect(!Self.isUnreapedChild(pid), "the reaper reaped it")
            var wait = child.waitFuture()
            var context = Context(waker: .noop)
            guard case .ready(.failure(let error)) = wait.poll(&context) else {
                Issue.record("waiting after the shutdown did not fail")
                return
            }
            #expect(error.code == .shutDown, "\(error)")
            #expect(FileManager.default.fileExists(atPath: proof), "it was killed rather than run to its end")
            // Not a silent success: the shutdown handed the child to a reaper.
            let killed = Result { () throws(WeftError) in try child.kill() }
            #expect(killed.failure?.code == .shutDown, "\(killed)")
        }
    }

    @Test("from async code on a loop thread: spawn, write, read, wait, output and status")
    func asyncForms() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let result = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [String] in
            var command = Command("/bin/sh", arguments: ["-c", "tr a-z A-Z; exit 4"])
            command.standardInput = .pipe
            command.standardOutput = .pipe
            let child = try await command.spawn()
            try await child.standardInput!.write(Array("hello".utf8))
            try await child.standardInput!.shutdown()
            var shouted: [UInt8] = []
            while case let bytes = try await child.standardOutput!.read(), !bytes.isEmpty { shouted += bytes }
            let status = try await child.wait()
            child.standardOutput = nil
            let output = try await Command("/bin/echo", arguments: ["hi"]).output()
            let plain = try await Command("/bin/true").status()
            return [String(decoding: shouted, as: UTF8.self), status.description,
                    String(decoding: output.standardOutput, as: UTF8.self), plain.description]
        })
        #expect(result == ["HELLO", "exit code 4", "hi\n", "exit code 0"])
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }

    @Test("an async wait() in flight when the child's loop shuts down fails with shutDown, as the poll form does, not CancellationError (nobody cancelled the task); so does status() awaited on that loop")
    func asyncWaitWhenTheLoopShutsDown() async throws {
        let loop = try LoopThread()
        // Long enough to outlive a loaded machine's delays (the shutdown kills
        // it): under the sanitizers a test that awaits can take 70 s, and a
        // child of 60 s that had exited made the cancelled wait a success.
        var command = Command("/bin/sleep", arguments: ["3600"])
        command.standardInput = .null
        command.killOnDrop = true
        let child = try await loop.run { try await command.spawn() }
        // A task that is cancelled is still told so.
        let cancelled = Task { try await child.wait() }
        try await Task.sleep(for: .milliseconds(100))
        cancelled.cancel()
        let cancelledResult = await outcome(of: { try await awaitWithin(.seconds(10), cancelled) })
        #expect(isCancellation(cancelledResult), "\(cancelledResult)")
        // A plain task: the loop's shutdown does not cancel it.
        let waiter = Task { try await child.wait() }
        let running = Task { try await loop.run { try await command.status() } }
        try await Task.sleep(for: .milliseconds(200))  // both wait
        await shutDownOffThePool(loop)
        for (name, task) in [("wait()", waiter), ("status()", running)] {
            let result = await outcome(of: { try await awaitWithin(.seconds(10), task) })
            guard case .failure(let error) = result else {
                Issue.record("\(name) returned after its loop shut down: \(result)")
                continue
            }
            #expect((error as? WeftError)?.code == .shutDown, "\(name): \(error)")
        }
    }

    // Before the fix that came with this test, each of the four tried the
    // spawn (its future's first poll came before the look at the task's
    // cancellation) and threw the missing program's notFound: a program that
    // existed ran, with nothing left to wait for it.
    @Test("status() and output() in a task cancelled already spawn nothing and throw CancellationError, on a loop and off it: a missing program is not even looked for")
    func runInACancelledTask() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let missing = Command("/nonexistent/weft-test-program")
        @Sendable func outcomes() async -> [String] {
            withUnsafeCurrentTask { $0?.cancel() }
            var outcomes: [String] = []
            for run in [{ _ = try await missing.status() }, { _ = try await missing.output() }] as [() async throws -> Void] {
                do {
                    try await run()
                    outcomes.append("no error")
                } catch is CancellationError {
                    outcomes.append("cancelled")
                } catch {
                    outcomes.append("\(error)")
                }
            }
            return outcomes
        }
        #expect(try await awaitWithin(.seconds(20), loop.spawn { await outcomes() }) == ["cancelled", "cancelled"])
        #expect(try await awaitWithin(.seconds(20), Task { await outcomes() }) == ["cancelled", "cancelled"])
    }

    @Test("off the loop thread: kill and the poll forms fail with wrongThread")
    func wrongThread() throws {
        let runtime = try Runtime()
        let child = try runtime.block(on: Command("/bin/sleep", arguments: ["30"]).spawnFuture()).get()
        let outcome = Outcome()
        ForeignThread {
            do throws(WeftError) { try child.kill() } catch { outcome.value.append(error.code) }
            var wait = child.waitFuture()
            var context = Context(waker: .noop)
            if case .ready(.failure(let error)) = wait.poll(&context) { outcome.value.append(error.code) }
        }.join()
        #expect(outcome.value == [.wrongThread, .wrongThread])
        try child.kill()
        #expect(try runtime.block(on: timeoutFuture(.seconds(10), child.waitFuture())).get().get().signal == SIGKILL)
    }
}

/// What the other thread saw: written there before its `ForeignThread`
/// signals its end, read here after the join (which orders the two), hence
/// `@unchecked Sendable`.
private final class Outcome: @unchecked Sendable {
    var value: [WeftError.Code] = []
}

@Suite("Process futures polled again after they completed")
struct ProcessFuturesPolledAgainTests {
    @Test("a spawn, a run to exit whose spawn failed, an output collection whose spawn failed, and a pipe, polled again, fail with .invalidArgument instead of starting a second child or making a second pipe")
    func polledAgain() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var spawn = Command("/bin/true").spawnFuture()
        let child = try runtime.block(on: pollFn { spawn.poll(&$0) }).get()
        let spawnAgain = try runtime.block(on: pollFn { spawn.poll(&$0) })
        #expect(spawnAgain.failure?.kind == .invalidArgument, "\(spawnAgain)")
        #expect(try ChildProcessTests.run(runtime, child.waitFuture()).get().exitCode == 0)
        if case .success(let extra) = spawnAgain { _ = try ChildProcessTests.run(runtime, extra.waitFuture()) }

        for var future in [AnyFuture(Command("/nonexistent/weft-test").statusFuture().map { $0.map { _ in () } }),
                           AnyFuture(Command("/nonexistent/weft-test").outputFuture().map { $0.map { _ in () } })] {
            let failed = try runtime.block(on: pollFn { future.poll(&$0) })
            #expect(failed.failure?.name == "ENOENT", "\(failed)")
            let again = try runtime.block(on: pollFn { future.poll(&$0) })
            #expect(again.failure?.kind == .invalidArgument, "\(again)")
        }

        var pipe = PipeStream.pipeFuture()
        let (reader, writer) = try runtime.block(on: pollFn { pipe.poll(&$0) }).get()
        let pipeAgain = try runtime.block(on: pollFn { pipe.poll(&$0) })
        #expect(pipeAgain.failure?.kind == .invalidArgument, "\(pipeAgain)")
        for stream in [reader, writer] { stream.close() }
        if case .success(let extra) = pipeAgain { for stream in [extra.reader, extra.writer] { stream.close() } }
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
