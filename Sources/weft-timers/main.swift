// weft-timers: Weft's timers and combinators, with elapsed times.
//
//     swift run weft-timers
//
// Each line shows how long after the start a step finished. It takes no
// options: `--help` prints what it does, anything else is a usage error
// (status 2); a runtime failure goes to stderr with status 1.

import SampleSupport
import Weft

let command = SampleCommand(
    name: "weft-timers",
    synopsis: "",
    help: """
    Runs Weft's timers and combinators for about a second (sleep, join, select, timeout,
    interval, spawned tasks), printing how long after the start each step finished.

      -h, --help    this text
    """)
if let first = command.arguments().first { command.usageError("unknown option \(first)") }

let start = ContinuousClock.now

func elapsed() -> String {
    let (seconds, attoseconds) = (ContinuousClock.now - start).components
    let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
    return "\(milliseconds) ms".padding(toLength: 8)
}

func say(_ text: String) {
    print("[\(elapsed())] \(text)")
}

extension String {
    func padding(toLength length: Int) -> String {
        count >= length ? self : String(repeating: " ", count: length - count) + self
    }
}

do {
    let runtime = try Runtime()

    // A plain sleep.
    try runtime.block(on: sleepFuture(for: .milliseconds(100)))
    say("slept 100 ms")

    // join: both sleeps run at once, so this takes 200 ms, not 300.
    let (a, b) = try runtime.block(on: join(
        sleepFuture(for: .milliseconds(100)).map { "short" },
        sleepFuture(for: .milliseconds(200)).map { "long" }))
    say("join finished both: \(a), \(b) (about 200 ms later, not 300)")

    // select: the first to finish wins; the other is dropped (its timer disarmed).
    let winner = try runtime.block(on: select(
        either: sleepFuture(for: .milliseconds(50)).map { "fast" },
        or: sleepFuture(for: .seconds(10)).map { "slow" }))
    switch winner {
    case .left(let name), .right(let name): say("select: \(name) won; pending timers now \(runtime.pendingTimerCount)")
    }

    // timeout, both ways.
    let inTime = try runtime.block(on: timeoutFuture(.milliseconds(100), sleepFuture(for: .milliseconds(20)).map { 42 }))
    say("timeout(100 ms) around a 20 ms job: \(inTime)")
    let late = try runtime.block(on: timeoutFuture(.milliseconds(50), sleepFuture(for: .seconds(5)).map { 42 }))
    say("timeout(50 ms) around a 5 s job: \(late)")

    // interval: five ticks, 100 ms apart (the first one at once).
    let ticks = try runtime.block(on: interval(every: .milliseconds(100)).prefix(5).fold([Int]()) { ticks, tick in
        say("interval tick \(tick)")
        return ticks + [tick]
    })
    say("interval delivered ticks \(ticks)")

    // Spawned tasks run concurrently with the one block(on:) drives.
    let handles = (1...3).map { n in
        runtime.spawn(sleepFuture(for: .milliseconds(30 * n)).map { n })
    }
    let outputs = try runtime.block(on: joinAll(handles))
    say("three spawned tasks finished: \(outputs.map { (try? $0.get()) ?? -1 })")
} catch {
    command.fail(error)
}
