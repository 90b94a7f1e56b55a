// weft-echo: a TCP echo server on Weft.
//
//     swift run -c release weft-echo [--host 127.0.0.1] [--port 7000] [--grace-period 5]
//                                    [--loops N] [--distribution reuseport|handoff] [--poll]
//
// Prints the address it listens on and echoes every byte back on every
// connection. On SIGINT or SIGTERM it shuts down gracefully: it stops
// accepting, lets live connections finish for up to the grace period (in
// seconds), closes the rest, and exits with status 0. On SIGUSR1 it prints
// each loop's counters and live tasks.
//
// By default each connection is Swift async code on one of N loops (a
// LoopGroup; N defaults to the CPUs the process may use, `--loops 1` is a
// single-loop server), spread over them by SO_REUSEPORT or by a hand-off from
// the first loop (`--distribution`). `--poll` serves with hand-written futures
// on one Runtime instead (the worked example of poll-based code; one loop).

import Glibc
import Weft

struct Options {
    var host = "127.0.0.1"
    var port = 7000
    var poll = false
    var gracePeriod = Duration.seconds(5)
    /// nil: one per CPU the process may use (one with `--poll`).
    var loops: Int?
    var distribution = ConnectionDistribution.reusePort

    init(_ arguments: [String]) throws(WeftError) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            if flag == "--poll" {
                poll = true
                continue
            }
            guard let value = iterator.next() else { throw usage("\(flag) needs a value") }
            switch flag {
            case "--host": host = value
            case "--port":
                guard let port = Int(value) else { throw usage("--port takes a number, not '\(value)'") }
                self.port = port
            case "--grace-period":
                guard let seconds = Double(value), seconds >= 0, seconds <= 3600 else {
                    throw usage("--grace-period takes seconds from 0 to 3600, not '\(value)'")
                }
                gracePeriod = .milliseconds(Int64((seconds * 1000).rounded()))
            case "--loops":
                guard let count = Int(value), count >= 1, count <= 1024 else {
                    throw usage("--loops takes a number from 1 to 1024, not '\(value)'")
                }
                loops = count
            case "--distribution":
                switch value {
                case "reuseport": distribution = .reusePort
                case "handoff": distribution = .handOff
                default: throw usage("--distribution takes reuseport or handoff, not '\(value)'")
                }
            default: throw usage("unknown option \(flag)")
            }
        }
        if poll, let loops, loops != 1 { throw usage("--poll serves on one loop; drop --loops \(loops)") }
    }
}

func usage(_ problem: String) -> WeftError {
    WeftError(.invalidArgument, operation: "weft-echo", detail: "\(problem); usage: weft-echo [--host H] [--port P] [--grace-period S] [--loops N] [--distribution reuseport|handoff] [--poll]")
}

/// Accepts connections until the listener closes, spawning a tracked echo task
/// for each.
struct AcceptLoop: Future {
    var connections: Incoming
    let tracker: TaskTracker

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            switch connections.pollNext(&context) {
            case .pending:
                return .pending
            case .ready(nil):
                return .ready(())
            case .ready(.failure(let error)?):
                print("weft-echo: \(error)")
            case .ready(.success(let stream)?):
                try? stream.setNoDelay(true)
                // Echo until the client half-closes, then close: copy has flushed
                // every byte by then, and the client reads end of stream. (A
                // half-close back would cost a shutdown and an epoll_ctl more.)
                spawn(tracker.track(copy(from: stream, to: stream).map { _ in stream.close() }))
            }
        }
    }
}

/// The poll-based server: hand-written futures on a Runtime driven by this thread.
func servePolling(_ options: Options) throws(WeftError) {
    let runtime = try Runtime()
    var stop = shutdownSignal()
    try stop.install(runtime: runtime)
    // Watched before the address is announced: an early SIGUSR1 must not be fatal.
    var reports = signals(SIGUSR1)
    try reports.install(runtime: runtime)
    let listener = try TCPListener.bind(SocketAddress(host: options.host, port: options.port), runtime: runtime)
    announce(try listener.localAddress)
    let connections = TaskTracker()
    let reporter = runtime.spawn(reports.fold(()) { _, _ in printReport() }, name: "SIGUSR1 reporter")
    let ended = try runtime.block(on: select(either: stop, or: AcceptLoop(connections: listener.incoming, tracker: connections)))
    reporter.abort()
    listener.close()
    if case .left(let signal) = ended {
        beginDrain(connections, signal: signal, options)
        let drained = try runtime.block(on: timeout(options.gracePeriod, connections.wait()))
        reportDrain(drained, connections)
    }
    try runtime.shutdown()  // cancels the connections still open
}

/// The async server: one Swift task per connection, on the loop of a
/// LoopGroup that accepted it.
func serveAsync(_ options: Options) async throws {
    let group = try LoopGroup(loops: options.loops, name: "weft-echo")
    let address = try SocketAddress(host: options.host, port: options.port)
    // Signals and the drain are watched from the first loop.
    let control = group.loops[0]
    try await control.spawn { () async throws in
        var stop = shutdownSignal()
        try stop.install()  // before listening: an early SIGTERM must not be fatal
        var reports = signals(SIGUSR1)
        try reports.install()  // nor an early SIGUSR1
        let connections = TaskTracker()
        let server = try await group.serve(address, distribution: options.distribution) { connection in
            try? connection.setNoDelay(true)
            let live = connections.token()
            defer {
                connection.close()  // every write has completed by then
                live.release()
            }
            while true {
                let bytes = try await connection.read()
                if bytes.isEmpty { break }
                try await connection.write(bytes)
            }
        }
        announce(server.localAddress)
        let reporter = control.spawn { [reports] in
            for try await _ in reports.values { await printReports(group) }
        }
        defer { reporter.cancel() }
        let signal = try await value(of: stop)
        await server.close()
        beginDrain(connections, signal: signal, options)
        reportDrain(try await value(of: timeout(options.gracePeriod, connections.wait())), connections)
        // How the connections spread over the loops (read by Benchmarks/echo/scaling.py).
        print("weft-echo: conns_per_loop=\(server.connectionsPerLoop.map(String.init).joined(separator: ","))")
        fflush(nil)
    }.value
    group.shutdown()  // cancels the connections still open
}

/// Stops counting new connections and says how many are being waited for.
func beginDrain(_ connections: TaskTracker, signal: Int32, _ options: Options) {
    connections.close()
    print("weft-echo: signal \(signal), stopped accepting; waiting up to \(options.gracePeriod) for \(connections.liveCount) connection(s)")
    fflush(nil)  // a supervisor watching the pipe learns the drain began
}

func reportDrain(_ drained: Result<Void, TimedOut>, _ connections: TaskTracker) {
    if case .failure = drained {
        print("weft-echo: \(connections.liveCount) connection(s) still open after the grace period; closing them")
    }
    print("weft-echo: shut down")
    fflush(nil)
}

/// Prints the counters and live tasks of the runtime running this thread,
/// through a writer thread: a stdout nobody reads must not stall the loop.
func printReport() {
    guard let report = Runtime.currentReport() else { return }
    ReportWriter.standardOutput.write("weft-echo: runtime report\n\(report)\n")
}

/// Prints each loop's counters and live tasks, each taken on its loop (one
/// text, through the writer thread, as `printReport`).
func printReports(_ group: LoopGroup) async {
    var text = ""
    for (index, report) in await group.reports().enumerated() {
        guard let report else { continue }
        text += "weft-echo: loop \(index) of \(group.loops.count), runtime report\n\(report)\n"
    }
    ReportWriter.standardOutput.write(text)
}

func announce(_ address: SocketAddress) {
    print("listening on \(address)")
    fflush(nil)  // the address line must reach a pipe at once
}

do {
    let options = try Options(CommandLine.arguments)
    if options.poll {
        try servePolling(options)
    } else {
        try await serveAsync(options)
    }
} catch {
    print("weft-echo: \(error)")
    exit(1)
}
