import Glibc
import Synchronization
import Weft

// MARK: - process-spawn

/// Spawns `/bin/true` `n` times, `concurrent` children in flight, each
/// awaited to its exit: the C twin is Benchmarks/libuv-c/process-spawn.c.
struct SpawnChildren: Future {
    let n: Int
    let concurrent: Int
    let command = Command("/bin/true")
    var started = 0
    var exited = 0
    var waiting: [WaitForExit] = []

    mutating func poll(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        while true {
            while waiting.count < concurrent && started < n {
                var spawn = command.spawnFuture()
                guard case .ready(let spawned) = spawn.poll(&context) else { fatalError("a spawn completes at once") }
                switch spawned {
                case .failure(let error): return .ready(.failure(error))
                case .success(let child): waiting.append(child.waitFuture())
                }
                started += 1
            }
            var index = 0
            var progressed = false
            while index < waiting.count {
                switch waiting[index].poll(&context) {
                case .pending:
                    index += 1
                case .ready(.failure(let error)):
                    return .ready(.failure(error))
                case .ready(.success(let status)):
                    guard status.isSuccess else {
                        return .ready(.failure(WeftError(.invalidArgument, operation: "process-spawn", detail: "/bin/true: \(status)")))
                    }
                    waiting.swapAt(index, waiting.count - 1)
                    waiting.removeLast()
                    exited += 1
                    progressed = true
                }
            }
            if exited == n { return .ready(.success(())) }
            if !progressed { return .pending }
        }
    }
}

func benchProcessSpawn(n: Int, concurrent: Int) throws {
    let runtime = try Runtime()
    let start = ContinuousClock.now
    try runtime.block(on: SpawnChildren(n: n, concurrent: max(1, concurrent))).get()
    report("process-spawn", n: n, wallNanoseconds: nanosecondsSince(start), bytesPerOp: 0)
}

// MARK: - spawn-at-descriptor-limit

/// Not a benchmark: the check of a spawn at the descriptor limit, in a process
/// of its own (the test suite runs it: lowering the limit in the test process
/// would starve the other tests running beside it). Lowers `RLIMIT_NOFILE` to
/// the lowest free descriptor, spawns `/bin/true` with its output piped
/// (which must fail with `EMFILE`), restores the limit, lets a timer fire, and
/// spawns it again (which must succeed). Prints
/// `weft-bench spawn-at-descriptor-limit error=<the error> then=<the second child's status>`
/// and exits 0 when both went as they must.
func checkSpawnAtDescriptorLimit() throws {
    let runtime = try Runtime()
    var command = Command("/bin/true")
    command.standardOutput = .pipe
    let saved = try lowerDescriptorLimitToLowestFree()
    let failed = try runtime.block(on: command.spawnFuture())
    restoreDescriptorLimit(saved)
    try runtime.block(on: sleepFuture(for: .milliseconds(5)))
    let child = try runtime.block(on: command.spawnFuture()).get()
    let status = try runtime.block(on: timeoutFuture(.seconds(10), child.waitFuture())).get().get()
    let error: String
    switch failed {
    case .failure(let failure): error = failure.description
    case .success: error = "none"
    }
    print("weft-bench spawn-at-descriptor-limit error=\(error) then=\(status)")
    if case .failure(let failure) = failed, failure.code == .tooManyOpenFiles, status.isSuccess { return }
    exit(1)
}

// MARK: - spawn-with-sigchld-blocked

/// Not a benchmark: the check that a child's exit is seen in a process that
/// started with `SIGCHLD` blocked, in a process of its own (the test suite
/// runs it: a signal mask is per thread and inherited by the threads a thread
/// starts, and the test process's must stay as it is). Blocks `SIGCHLD` on
/// this, the main thread, before any runtime exists, spawns `/bin/true` on a
/// runtime this thread drives, and waits for its exit at most 5 s. Prints
/// `weft-bench spawn-with-sigchld-blocked status=<its status, or "timed out">`
/// and exits 0 when the exit was seen, 1 when the wait timed out.
func checkSpawnWithSIGCHLDBlocked() throws {
    var mask = sigset_t()
    sigemptyset(&mask)
    sigaddset(&mask, SIGCHLD)
    pthread_sigmask(SIG_BLOCK, &mask, nil)
    let runtime = try Runtime()
    let child = try runtime.block(on: Command("/bin/true").spawnFuture()).get()
    guard case .success(let ended) = try runtime.block(on: timeoutFuture(.seconds(5), child.waitFuture())) else {
        print("weft-bench spawn-with-sigchld-blocked status=timed out")
        exit(1)
    }
    print("weft-bench spawn-with-sigchld-blocked status=\(try ended.get())")
}

// MARK: - spawn-with-stdin-closed

/// Not a benchmark: the check that a process started with its standard input
/// closed hands its children `/dev/null` there, not whatever took descriptor
/// 0 (the loop's epoll, a socket), in a process of its own (the test
/// process's descriptors must stay as they are). Closes descriptor 0 on the
/// main thread before any runtime exists, opens a TCP listener, and spawns
/// `readlink /proc/self/fd/0` with its input inherited. Prints
/// `weft-bench spawn-with-stdin-closed stdin=<what the child's input is>`
/// and exits 0 when that is `/dev/null`, 1 otherwise.
func checkSpawnWithStdinClosed() throws {
    close(0)
    let runtime = try Runtime()
    let listener = try TCPListener.bind(SocketAddress(host: "127.0.0.1", port: 0), runtime: runtime)
    defer { listener.close() }
    var command = Command("/bin/sh", arguments: ["-c", "readlink /proc/self/fd/0"])
    command.standardOutput = .pipe
    let output = try runtime.block(on: timeoutFuture(.seconds(5), command.outputFuture())).get().get()
    let input = String(decoding: output.standardOutput, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
    print("weft-bench spawn-with-stdin-closed stdin=\(input)")
    if input != "/dev/null" { exit(1) }
}

// MARK: - spawn-from-non-utf8-path

/// Not a benchmark: the check that a program found only in a `PATH`
/// directory whose name is not UTF-8 is spawned with its output to a file
/// (the check before such a spawn, `SpawnPreflight`, decoded `PATH` and
/// refused it with ENOENT, where `execvp` finds it), in a process of its own
/// (it sets the process's `PATH`). Makes a directory whose name holds the
/// byte 0xE9, links `/bin/echo` into it, sets `PATH` to it alone, and runs
/// the link by name with its output to a file. Prints
/// `weft-bench spawn-from-non-utf8-path output=<the file's first line, or the error>`
/// and exits 0 when that is `found`, 1 otherwise.
func checkSpawnFromNonUTF8Path() throws {
    func cString(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }
    let directory = Array("/tmp/weft-path-".utf8) + [0xE9] + Array("-\(getpid())".utf8)
    let link = directory + Array("/weft-path-probe".utf8)
    let output = "/tmp/weft-path-output-\(getpid())"
    guard mkdir(cString(directory), 0o700) == 0, symlink("/bin/echo", cString(link)) == 0 else {
        print("weft-bench spawn-from-non-utf8-path output=setup failed: errno \(errno)")
        exit(1)
    }
    defer {
        unlink(cString(link))
        rmdir(cString(directory))
        unlink(output)
    }
    setenv("PATH", cString(directory), 1)
    let runtime = try Runtime()
    var command = Command("weft-path-probe", arguments: ["found"])
    command.standardOutput = .file(path: output)
    let seen: String
    switch try runtime.block(on: timeoutFuture(.seconds(5), command.statusFuture())).get() {
    case .success:
        let bytes = try runtime.block(on: FileSystem.readFileFuture(output)).get()
        seen = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
    case .failure(let error):
        seen = "\(error)"
    }
    print("weft-bench spawn-from-non-utf8-path output=\(seen)")
    if seen != "found" { exit(1) }
}

// MARK: - sigchld-stream-churn

/// Not a benchmark: the check that dropping a `SIGCHLD` stream never takes
/// `SIGCHLD` back from a loop's child watcher, in a process of its own (it
/// sets and churns the process's `SIGCHLD` handling, which every loop that
/// spawns relies on). First the rule, which holds or not at once: with
/// `SIGCHLD` ignored, a stream of it opened and dropped leaves libuv's
/// `SIG_DFL` (Weft restores no disposition of `SIGCHLD`). Then the race the
/// rule prevents, which a run may or may not meet: a loop thread opens and
/// drops `SIGCHLD` streams over and over, pausing without one (so that a child
/// watcher stopping then leaves `SIG_DFL`, which the next stream saves as the
/// disposition to restore), while this thread spawns `/bin/true` and waits
/// for it (3 s at most), for `seconds`. Prints
/// `weft-bench sigchld-stream-churn restored=<0|1> spawns=<N> hung=<0|1>` and
/// exits 1 when the ignored disposition was restored or a wait hung (a
/// stream's restore had put `SIG_DFL` over the handler libuv installed for a
/// spawn meanwhile).
func checkSIGCHLDStreamChurn(seconds: Int) throws {
    let runtime = try Runtime()
    signal(SIGCHLD, SIG_IGN)
    do {
        var stream = signals(SIGCHLD)
        try stream.install(runtime: runtime)
    }  // dropped: closed at once, on this, its loop's thread
    var action = sigaction()
    sigaction(SIGCHLD, nil, &action)
    let restored = unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    signal(SIGCHLD, SIG_DFL)
    let churning = try LoopThread(name: "sigchld-churn")
    let stop = Atomic<Bool>(false)
    churning.spawn {
        while !stop.load(ordering: .relaxed) {
            var stream = signals(SIGCHLD)
            try stream.install()
            _ = consume stream
            usleep(20)
        }
    }
    defer { churning.shutdown() }
    let deadline = ContinuousClock.now + .seconds(seconds)
    var spawns = 0
    var hung = false
    while !hung && ContinuousClock.now < deadline {
        let child = try runtime.block(on: Command("/bin/true").spawnFuture()).get()
        spawns += 1
        if case .failure = try runtime.block(on: timeoutFuture(.seconds(3), child.waitFuture())) { hung = true }
    }
    stop.store(true, ordering: .relaxed)
    print("weft-bench sigchld-stream-churn restored=\(restored ? 1 : 0) spawns=\(spawns) hung=\(hung ? 1 : 0)")
    if restored || hung { exit(1) }
}
