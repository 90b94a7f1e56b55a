import Glibc
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
    let resource = Int32(RLIMIT_NOFILE.rawValue)
    var saved = rlimit()
    guard getrlimit(resource, &saved) == 0 else { throw WeftError(.invalidArgument, operation: "getrlimit") }
    let lowestFree = dup(0)
    close(lowestFree)
    var lowered = saved
    lowered.rlim_cur = rlim_t(max(0, lowestFree))
    guard setrlimit(resource, &lowered) == 0 else { throw WeftError(.invalidArgument, operation: "setrlimit") }
    let failed = try runtime.block(on: command.spawnFuture())
    setrlimit(resource, &saved)
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

