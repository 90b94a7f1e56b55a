// weft-default-executor: EXPERIMENTAL. Plain Swift concurrency on Weft's loops.
//
//     swift run weft-default-executor
//
// Installs a LoopGroup as Swift's default executor (WeftDefaultExecutor,
// built on Swift 6.3's experimental ExecutorFactory SPI), then shows where
// each kind of Swift concurrency code runs: Task { }, Task.detached { } and a
// nonisolated async function run on a Weft loop (and use its TCP API without
// naming a loop, and Task.sleep); main itself stays on Dispatch's main queue,
// which Swift 6.3.1 on Linux does not let a factory replace. Exits 1 if
// anything that should run on a loop did not.

import Glibc
import SampleSupport
import Weft

let command = SampleCommand(
    name: "weft-default-executor",
    synopsis: "",
    help: """
    EXPERIMENTAL. Installs a LoopGroup as Swift's default executor, then shows where
    Task { }, Task.detached { }, a nonisolated async function and Task.sleep run, and a
    TCP round trip inside a plain Task. Exits 1 if any of them did not run on a loop.

      -h, --help    this text
    """)
if let first = command.arguments().first { command.usageError("unknown option \(first)") }

/// Where the calling code runs.
func place() -> String {
    Runtime.currentReport() != nil ? "on a Weft loop" : "off Weft's loops"
}

/// A nonisolated async function: runs on the default executor.
nonisolated func whereNonisolatedRuns() async -> String {
    place()
}

/// What the sample shows, run from a nonisolated async function: a `Task { }`
/// created in code isolated to the main actor inherits that isolation and
/// runs on the main queue, as anywhere in Swift.
nonisolated func demonstrate() async throws -> (places: [String], echoed: Bool) {
    let task = await Task { place() }.value
    let detached = await Task.detached { place() }.value
    let nonisolated = await whereNonisolatedRuns()
    // A round trip through a listener bound inside a plain Task: no loop named.
    let echoed = try await Task { () async throws -> Bool in
        let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
        let address = try listener.localAddress
        let server = Task {
            let connection = try await listener.accept()
            try await connection.write(try await connection.read())
        }
        let client = try await TCPStream.connect(to: address)
        try await client.write(Array("hello".utf8))
        let reply = try await client.read()
        try await server.value
        return reply == Array("hello".utf8)
    }.value
    // Task.sleep asks the default executor to run its wake-up later
    // (SchedulingExecutor); the task then goes on where it was.
    let afterSleep = await Task { () async -> String in
        do { try await Task.sleep(for: .milliseconds(5)) } catch { return "failed: \(error)" }
        return place()
    }.value
    let long = Task { () async -> String in
        do { try await Task.sleep(for: .seconds(60)) } catch is CancellationError { return "cancelled, \(place())" } catch { return "\(error)" }
        return "slept 60 s"
    }
    long.cancel()
    let cancelled = await long.value
    print("Task { }: \(task)")
    print("Task.detached { }: \(detached)")
    print("nonisolated async function: \(nonisolated)")
    print("TCP round trip inside Task { }: \(echoed ? "echoed" : "failed")")
    print("after Task.sleep inside Task { }: \(afterSleep)")
    print("a 60 s Task.sleep cancelled: \(cancelled)")
    return ([task, detached, nonisolated, afterSleep], echoed && cancelled == "cancelled, on a Weft loop")
}

do {
    let group = try LoopGroup(name: "weft-default")
    WeftDefaultExecutor.install(group)
    let (places, echoed) = try await demonstrate()
    print("main: \(place()) (Swift 6.3.1 on Linux keeps main on Dispatch's main queue)")
    group.shutdown()
    if !places.allSatisfy({ $0 == "on a Weft loop" }) || !echoed { exit(1) }
} catch {
    command.fail(error)  // a message and status 1, not a crash at top level
}
