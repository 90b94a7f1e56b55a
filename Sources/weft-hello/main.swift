// weft-hello: the async book's final project, a concurrent web server.
//
//     swift run weft-hello [--host 127.0.0.1] [--port 7878] [--grace-period 10] [--read-timeout 10] [--loops N]
//     curl http://127.0.0.1:7878/          # hello.html
//     curl http://127.0.0.1:7878/sleep     # the same, 5 s later; others are not held up
//
// With `--loops 1` the accept loop is the book's own ("Handling Connections
// Concurrently"): `incoming.forEachConcurrent(limit: nil)`, every connection's
// handler (a poll-based future, generic over byte streams) a future in flight
// in one task. With N loops it is the book's "Serving Requests in Parallel":
// every connection is its own task on one of N loops (a LoopGroup serving the
// port on every loop with SO_REUSEPORT); N defaults to the CPUs the process
// may use. On SIGINT or SIGTERM it stops accepting, closes the connections
// that have not begun a request, lets requests in flight finish for up to the
// grace period (seconds; long enough for a /sleep by default), closes the
// rest, and exits with status 0; a second SIGINT or
// SIGTERM exits at once (status 128 + the signal). `--help` prints the
// options; a usage error exits with status 2. On SIGUSR1 it prints each
// loop's counters and live tasks.

import Glibc
import HelloServer
import SampleSupport
import Weft

let command = SampleCommand(
    name: "weft-hello",
    synopsis: "[--host H] [--port P] [--grace-period S] [--read-timeout S] [--loops N]",
    help: """
    The async book's web server: GET / answers hello.html, GET /sleep the same 5 s later
    (other requests are served meanwhile), any other path 404; HEAD gets the headers alone,
    other methods 405, a malformed request line 400, one over 8 KiB 414. The query string
    is ignored.

      --host H            the address or name to listen on (default 127.0.0.1; `localhost` works)
      --port P            the port (default 7878; 0 picks a free one)
      --grace-period S    on SIGINT or SIGTERM, how long requests in flight may finish (default 10);
                          a second SIGINT or SIGTERM exits at once
      --read-timeout S    how long a client may take to send its request line (default 10)
      --loops N           loops serving the port (default: one per CPU the process may use;
                          1 serves as the book writes it, incoming.forEachConcurrent)
      -h, --help          this text

    SIGUSR1 prints each loop's counters and live tasks.
    """)

var host = "127.0.0.1"
var port = 7878
var gracePeriod = Duration.seconds(10)
/// How long a client may take to send its request line.
var readTimeout = Duration.seconds(10)
var loops: Int?
var arguments = command.arguments().makeIterator()
command.printAcceptFailures()
let valued: Set = ["--host", "--port", "--grace-period", "--read-timeout", "--loops"]
while let flag = arguments.next() {
    guard valued.contains(flag) else { command.usageError("unknown option \(flag)") }
    let value = command.value(after: flag, in: &arguments)
    switch flag {
    case "--host": host = value
    case "--port": port = command.number(value, for: flag, in: 0...65535)
    case "--grace-period": gracePeriod = command.seconds(value, for: flag, upTo: 3600, allowingZero: true)
    case "--read-timeout": readTimeout = command.seconds(value, for: flag, upTo: 3600, allowingZero: false)
    case "--loops": loops = command.number(value, for: flag, in: 1...1024)
    default: command.usageError("unknown option \(flag)")
    }
}

do {
    let group = try LoopGroup(loops: loops, name: "weft-hello")
    let address = try await listenAddress(host: host, port: port)
    let gracePeriod = gracePeriod
    let readTimeout = readTimeout
    // Signals and the drain are watched from the first loop.
    let control = group.loops[0]
    try await control.spawn { () async throws -> Void in
        var stop = shutdownSignal()
        try stop.install()  // before listening: an early SIGTERM must not be fatal
        var reports = signals(SIGUSR1)
        try reports.install()  // nor an early SIGUSR1
        let localAddress: SocketAddress
        /// Stops accepting; then the connections still open, and a future
        /// ready once none is.
        let stopAccepting: () async -> Void
        let stillOpen: () -> Int
        let finished: AnyFuture<Void>
        // Cancelled when the drain begins: a connection that has not begun
        // its request is closed then (requests in flight finish).
        let closeIdle = CancellationToken()
        if group.loops.count == 1 {
            let listener = try TCPListener.bind(address)
            localAddress = try listener.localAddress
            // The async book, "Building a Concurrent Web Server", "Handling
            // Connections Concurrently": every connection a future in flight in
            // one task. Closing the listener ends `incoming`; the connections in
            // flight are still served, and the task ends after the last.
            let requests = TaskTracker()
            spawn(listener.incoming.forEachConcurrent(limit: nil) { stream in
                requests.track(handleConnection(stream, readTimeout: readTimeout, closeIdle: closeIdle))
            }, name: "accept loop")
            stopAccepting = {
                listener.close()
                requests.close()
                closeIdle.cancel()
            }
            stillOpen = { requests.liveCount }
            finished = AnyFuture(requests.waitFuture())
        } else {
            // The book's "Serving Requests in Parallel": a task per connection,
            // on the loop that accepted it.
            // The server counts its connections for the drain, from their accept.
            let server = try await group.serve(address) { connection in
                _ = try? await value(of: HandleConnection(stream: connection, readTimeout: readTimeout, closeIdle: closeIdle))
            }
            localAddress = server.localAddress
            stopAccepting = {
                await server.close()
                closeIdle.cancel()
            }
            stillOpen = { server.liveConnections }
            finished = AnyFuture(server.waitForConnectionsFuture())
        }
        announce("listening on \(localAddress)")
        let reporter = control.spawn { [reports] in
            for try await _ in reports.values {
                // One text, written by a thread of its own: a stdout nobody
                // reads must not stall the loop.
                var text = ""
                for (index, report) in await group.reports().enumerated() {
                    guard let report else { continue }
                    text += "weft-hello: loop \(index) of \(group.loops.count), runtime report\n\(report)\n"
                }
                ReportWriter.standardOutput.write(text)
            }
        }
        defer { reporter.cancel() }
        let signal = try await value(of: stop)
        // A second signal cuts the drain short (one arriving before this
        // install finds no watcher and ends the process by its default action).
        var again = shutdownSignal()
        try again.install()
        await stopAccepting()
        StatusLines.say("weft-hello: signal \(signal), stopped accepting; waiting up to \(gracePeriod) for \(stillOpen()) connection(s)")
        switch try await value(of: select(either: timeoutFuture(gracePeriod, finished), or: again)) {
        case .left(.failure):
            StatusLines.say("weft-hello: \(stillOpen()) connection(s) still open after the grace period; closing them")
        case .left(.success):
            break
        case .right(let second):
            command.exitAtOnce(afterSignal: second, connectionsOpen: stillOpen())
        }
        StatusLines.say("weft-hello: shut down")
    }.value
    group.shutdown()  // cancels the connections still open
} catch {
    command.fail(error)
}
StatusLines.finish()
