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
