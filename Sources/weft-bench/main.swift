// weft-bench: micro-benchmarks of Weft's executor and timers.
//
// Usage: weft-bench <spawn|wake|timers|timer-churn|parked|resume|channel|oneshot|notify|cross-thread|cross-loop|
//                    for-each-concurrent|buffer-unordered|process-spawn> [-n N] [-l LIMIT] [-c CONCURRENT]
// Each prints, as its last line (for-each-concurrent and buffer-unordered print
// their FutureSet-by-hand baseline first, as `<name>-futureset`):
//   weft-bench <name> n=<N> ns_per_op=<x> bytes_per_op=<y> wall_ms=<z>
// Build with `swift build -c release`; see docs/BENCHMARKS.md for the figures.
// `weft-bench spawn-at-descriptor-limit`, `spawn-with-sigchld-blocked`,
// `spawn-with-stdin-closed`, `spawn-from-non-utf8-path`,
// `sigchld-stream-churn [-n SECONDS]` and `shared-loop-at-descriptor-limit`
// are not benchmarks but fault checks the tests run in a process of their
// own (ProcessFaultTests, SharedLoopTests).

import CWeftSupport
import Glibc
import Weft

/// Bytes of heap in use, from glibc's allocator (what `malloc` handed out).
func heapBytesInUse() -> Int {
    weft_heap_bytes_in_use()
}

func nanosecondsSince(_ start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    let (seconds, attoseconds) = elapsed.components
    return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
}

func report(_ name: String, n: Int, wallNanoseconds: Double, bytesPerOp: Double) {
    let nsPerOp = wallNanoseconds / Double(n)
    print("weft-bench \(name) n=\(n) ns_per_op=\(format(nsPerOp)) bytes_per_op=\(format(bytesPerOp)) wall_ms=\(format(wallNanoseconds / 1e6))")
}

func format(_ value: Double) -> String {
    let scaled = (value * 10).rounded() / 10
    return String(scaled)
}

/// A fixed-seed xorshift64* generator, the same as the C baselines use.
struct SeededGenerator {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

/// Awaits every handle in order.
struct AwaitAll<T>: Future {
    var handles: [JoinHandle<T>]
    var position = 0

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while position < handles.count {
            guard case .ready = handles[position].poll(&context) else { return .pending }
            position += 1
        }
        handles = []
        return .ready(())
    }
}

// MARK: - spawn

/// Spawns `n` trivial tasks, then awaits every handle.
struct SpawnMany: Future {
    let n: Int
    var waiting: AwaitAll<Int>?

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        if waiting == nil {
            var handles: [JoinHandle<Int>] = []
            handles.reserveCapacity(n)
            for i in 0..<n { handles.append(spawn(ready(i))) }
            waiting = AwaitAll(handles: handles)
        }
        return waiting!.poll(&context)
    }
}

func benchSpawn(n: Int) throws {
    let runtime = try Runtime()
    let start = ContinuousClock.now
    try runtime.block(on: SpawnMany(n: n))
    report("spawn", n: n, wallNanoseconds: nanosecondsSince(start), bytesPerOp: 0)
}

// MARK: - wake

/// A token passed between two tasks through their wakers.
final class Court {
    var turn = 0
    var remaining: Int
    var wakers: [Waker?] = [nil, nil]
    init(handOffs: Int) { remaining = handOffs }
}

struct Player: Future {
    let court: Court
    let side: Int

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        if court.remaining <= 0 {
            court.wakers[1 - side]?.wake()
            return .ready(())
        }
        if court.turn == side {
            court.remaining -= 1
            court.turn = 1 - side
            court.wakers[1 - side]?.wake()
        }
        if court.wakers[side].map({ !$0.willWake(context.waker) }) ?? true {
            court.wakers[side] = context.waker
        }
        return .pending
    }
}

func benchWake(n: Int) throws {
    let runtime = try Runtime()
    let court = Court(handOffs: n)
    let a = runtime.spawn(Player(court: court, side: 0))
    let b = runtime.spawn(Player(court: court, side: 1))
    let start = ContinuousClock.now
    _ = try runtime.block(on: join(a, b))
    report("wake", n: n, wallNanoseconds: nanosecondsSince(start), bytesPerOp: 0)
}

// MARK: - timers

/// Spawns `n` tasks sleeping until pseudo-random deadlines in 0...1000 ms, measures
/// the heap once all are asleep, then awaits them all.
struct ManyTimers: Future {
    let n: Int
    var heapBefore = 0
    var bytesPerTimer = 0.0
    var yielded = YieldNow()
    var waiting: AwaitAll<Void>?
    var started = false

    mutating func poll(_ context: inout Context) -> Poll<Double> {
        if !started {
            started = true
            heapBefore = heapBytesInUse()
            var random = SeededGenerator()
            let start = ContinuousClock.now
            var handles: [JoinHandle<Void>] = []
            handles.reserveCapacity(n)
            for _ in 0..<n {
                let offset = Duration.milliseconds(Int64(random.next() % 1001))
                handles.append(spawn(sleepFuture(until: start + offset)))
            }
            waiting = AwaitAll(handles: handles)
        }
        // One trip through the ready queue polls every task once: all asleep.
        guard case .ready = yielded.poll(&context) else { return .pending }
        if bytesPerTimer == 0 {
            bytesPerTimer = Double(heapBytesInUse() - heapBefore) / Double(n)
        }
        guard case .ready = waiting!.poll(&context) else { return .pending }
        return .ready(bytesPerTimer)
    }
}

func benchTimers(n: Int) throws {
    let runtime = try Runtime()
    let start = ContinuousClock.now
    let bytes = try runtime.block(on: ManyTimers(n: n))
    report("timers", n: n, wallNanoseconds: nanosecondsSince(start), bytesPerOp: bytes)
}

// MARK: - timer-churn

/// Sleeps 1 ms, `iterations` times.
struct SleepLoop: Future {
    var remaining: Int
    var current: Sleep?

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            if current == nil {
                if remaining == 0 { return .ready(()) }
                remaining -= 1
                current = sleepFuture(for: .milliseconds(1))
            }
            guard case .ready = current!.poll(&context) else { return .pending }
            current = nil
        }
    }
}

struct ChurnAll: Future {
    let tasks: Int
    let iterations: Int
    var waiting: AwaitAll<Void>?

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        if waiting == nil {
            let handles = (0..<tasks).map { _ in spawn(SleepLoop(remaining: iterations)) }
            waiting = AwaitAll(handles: handles)
        }
        return waiting!.poll(&context)
    }
}

func benchTimerChurn(tasks: Int, iterations: Int) throws {
    let runtime = try Runtime()
    let start = ContinuousClock.now
    try runtime.block(on: ChurnAll(tasks: tasks, iterations: iterations))
    report("timer-churn", n: tasks * iterations, wallNanoseconds: nanosecondsSince(start), bytesPerOp: 0)
}

// MARK: - parked

/// Spawns `n` tasks that never complete and measures the heap once all are parked.
struct ParkMany: Future {
    let n: Int
    var heapBefore = 0
    var yielded: YieldNow?

    mutating func poll(_ context: inout Context) -> Poll<Double> {
        if yielded == nil {
            heapBefore = heapBytesInUse()
            for _ in 0..<n { spawn(pending(Void.self)) }
            yielded = YieldNow()
        }
        guard case .ready = yielded!.poll(&context) else { return .pending }
        return .ready(Double(heapBytesInUse() - heapBefore) / Double(n))
    }
}

func benchParked(n: Int) throws {
    let runtime = try Runtime()
    let start = ContinuousClock.now
    let bytes = try runtime.block(on: ParkMany(n: n))
    let wall = nanosecondsSince(start)
    try runtime.shutdown()
    report("parked", n: n, wallNanoseconds: wall, bytesPerOp: bytes)
}

// MARK: - resume

/// A Swift task and a Weft task on one loop hand a turn back and forth through
/// two `Notify`s, `n` times. Each iteration is one suspension of the Swift
/// task on a continuation, one wake of the Weft task, and one continuation
/// resume from that task's poll (the async bridge's round trip).
/// With `spawned` false (`resume-preferring`), the Swift task is one that
/// prefers the loop but that `LoopThread.spawn` did not start (as an actor
/// pinned to the loop is): its awaits borrow the loop's spare waker, add a
/// cancellation record and are listed for the loop's shutdown.
func benchResume(n: Int, spawned: Bool = true) async throws {
    let loop = try LoopThread(name: "weft-bench")
    defer { loop.shutdown() }
    let body = { @Sendable () async throws -> Double in
        let ping = Notify()
        let pong = Notify()
        let partner = spawn(NotifyPlayer(mine: ping, theirs: pong, rounds: n, servesFirst: false))
        let start = ContinuousClock.now
        for _ in 0..<n {
            ping.notifyOne()
            try await pong.notified()
        }
        let elapsed = nanosecondsSince(start)
        _ = try await partner.value
        return elapsed
    }
    let wallNanoseconds = try await (spawned ? loop.spawn(body) : Task(executorPreference: loop.taskExecutor, operation: body)).value
    report(spawned ? "resume" : "resume-preferring", n: n, wallNanoseconds: wallNanoseconds, bytesPerOp: 0)
}

// MARK: - main

let usage = "usage: weft-bench <spawn|wake|timers|timer-churn|parked|resume|resume-preferring|channel|oneshot|notify|cross-thread|cross-loop|for-each-concurrent|buffer-unordered|process-spawn> [-n N] [-t TASKS -i ITERATIONS] [-l LIMIT] [-c CONCURRENT]"

/// Writes `text` to descriptor 2 (the C `stderr` is shared mutable state
/// to Swift 6).
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
}

/// Reports a usage error on stderr and exits 2: a run with options it did
/// not take would print a result line for the defaults, which a script
/// would record as the figure it asked for.
func usageError(_ problem: String) -> Never {
    writeStandardError("weft-bench: \(problem)\n\(usage)\n")
    exit(2)
}

/// The benchmark's options after its name: each of `defaults`' flags at
/// most once with a positive whole number, anything else a usage error.
func options(_ defaults: KeyValuePairs<String, Int>) -> [String: Int] {
    var values = Dictionary(uniqueKeysWithValues: defaults.map { ($0.key, $0.value) })
    var rest = CommandLine.arguments.dropFirst(2)
    while let flag = rest.popFirst() {
        guard values[flag] != nil else { usageError("unknown option \(flag) for \(CommandLine.arguments[1])") }
        guard let text = rest.popFirst() else { usageError("\(flag) needs a value") }
        guard let value = Int(text), value > 0 else { usageError("\(flag) takes a positive whole number, not \(text)") }
        values[flag] = value
    }
    return values
}

/// The `-n` option, `value` when not given.
func count(default value: Int) -> Int { options(["-n": value])["-n"]! }

let arguments = CommandLine.arguments
if arguments.contains("--help") || arguments.contains("-h") {
    print(usage)
    exit(0)
}
guard arguments.count >= 2 else { usageError("which benchmark?") }

do {
    switch arguments[1] {
    case "spawn": try benchSpawn(n: count(default: 1_000_000))
    case "wake": try benchWake(n: count(default: 1_000_000))
    case "timers": try benchTimers(n: count(default: 1_000_000))
    case "timer-churn":
        let given = options(["-t": 10_000, "-i": 100])
        try benchTimerChurn(tasks: given["-t"]!, iterations: given["-i"]!)
    case "parked": try benchParked(n: count(default: 100_000))
    case "resume": try await benchResume(n: count(default: 1_000_000))
    case "resume-preferring": try await benchResume(n: count(default: 1_000_000), spawned: false)
    case "channel": try benchChannel(n: count(default: 10_000_000))
    case "oneshot": try benchOneshot(n: count(default: 1_000_000))
    case "notify": try benchNotify(n: count(default: 1_000_000))
    case "cross-thread": try benchCrossThread(n: count(default: 10_000_000))
    case "cross-loop": try await benchCrossLoop(n: count(default: 50_000))
    case "for-each-concurrent", "buffer-unordered":
        let given = options(["-n": 1_000_000, "-l": 64])
        if arguments[1] == "for-each-concurrent" {
            try benchForEachConcurrent(n: given["-n"]!, limit: given["-l"]!)
        } else {
            try benchBufferUnordered(n: given["-n"]!, limit: given["-l"]!)
        }
    case "process-spawn":
        let given = options(["-n": 2000, "-c": 1])
        try benchProcessSpawn(n: given["-n"]!, concurrent: given["-c"]!)
    case "spawn-at-descriptor-limit": _ = options([:]); try checkSpawnAtDescriptorLimit()
    case "spawn-with-sigchld-blocked": _ = options([:]); try checkSpawnWithSIGCHLDBlocked()
    case "spawn-with-stdin-closed": _ = options([:]); try checkSpawnWithStdinClosed()
    case "spawn-from-non-utf8-path": _ = options([:]); try checkSpawnFromNonUTF8Path()
    case "sigchld-stream-churn": try checkSIGCHLDStreamChurn(seconds: count(default: 8))
    case "shared-loop-at-descriptor-limit": _ = options([:]); try await checkSharedLoopAtDescriptorLimit()
    default: usageError("unknown benchmark \(arguments[1])")
    }
} catch {
    writeStandardError("weft-bench: \(error)\n")
    exit(1)
}
