// weft-echo: a TCP echo server on Weft (or UDP with --udp, a Unix socket with --unix PATH).
//
//     swift run -c release weft-echo [--host 127.0.0.1] [--port 7000] [--grace-period 5]
//                                    [--idle-timeout S] [--loops N] [--distribution reuseport|handoff]
//                                    [--buffer-budget MiB] [--poll] [--udp | --unix PATH]
//
// `--udp` echoes every datagram back to its sender on the same --host and
// --port, with a socket per loop (SO_REUSEPORT). `--unix PATH` echoes on a
// Unix domain socket at PATH (`@name`: Linux's abstract namespace), on one
// loop; the socket file is removed on exit.
//
// Prints the address it listens on and echoes every byte back on every
// connection. On SIGINT or SIGTERM it shuts down gracefully: it stops
// accepting, lets live connections finish for up to the grace period (in
// seconds), closes the rest, and exits with status 0; a second SIGINT or
// SIGTERM during that wait exits at once (status 128 + the signal). `--help`
// prints the options; a usage error exits with status 2. On SIGUSR1 it prints
// each loop's counters and live tasks. With `--idle-timeout S` a TCP connection
// that sends nothing for S seconds, or has not taken an echo (up to 64 KiB, past
// what the kernel buffers) within S seconds, is closed (default: never), so idle
// peers cannot hold every descriptor. `--buffer-budget MiB` sets what each loop's
// connections may hold together before reading pauses on those that hold any
// (RuntimeOptions.connectionBufferBudget; default 32 MiB).
//
// By default each connection is Swift async code on one of N loops (a
// LoopGroup; N defaults to the CPUs the process may use, `--loops 1` is a
// single-loop server), spread over them by SO_REUSEPORT or by a hand-off from
// the first loop (`--distribution`). `--poll` serves with hand-written futures
// on one Runtime instead (the worked example of poll-based code; one loop).

import Glibc
import SampleSupport
import Weft

let command = SampleCommand(
    name: "weft-echo",
    synopsis: "[--host H] [--port P] [--grace-period S] [--idle-timeout S] [--loops N] [--distribution reuseport|handoff] [--buffer-budget MiB] [--poll] [--udp | --unix PATH]",
    help: """
    A TCP echo server: prints the address it listens on, then echoes every byte back.
    With --udp a UDP echo server (every datagram back to its sender); with --unix PATH a
    Unix domain socket echo server.

      --host H               the address or name to listen on (default 127.0.0.1; `localhost` works)
      --port P               the port (default 7000; 0 picks a free one)
      --grace-period S       on SIGINT or SIGTERM, how long live connections may finish (default 5);
                             a second SIGINT or SIGTERM exits at once
      --idle-timeout S       close a TCP connection that sends nothing for S seconds, or has not
                             taken an echo (up to 64 KiB) within S seconds (default: never)
      --loops N              loops serving the port (default: one per CPU the process may use)
      --distribution D       reuseport (a listener per loop, default) or handoff (one acceptor)
      --buffer-budget MiB    what each loop's connections may hold before their reads pause (default 32)
      --poll                 serve with hand-written poll futures on one loop (TCP, UDP or Unix)
      --udp                  echo UDP datagrams on --host and --port instead (a socket per loop)
      --unix PATH            echo on the Unix socket PATH instead (`@name`: abstract namespace; one loop)
      -h, --help             this text

    SIGUSR1 prints each loop's counters and live tasks.
    """)

struct Options {
    var host = "127.0.0.1"
    var port = 7000
    var poll = false
    var gracePeriod = Duration.seconds(5)
    /// nil: one per CPU the process may use (one with `--poll`).
    var loops: Int?
    var distribution = ConnectionDistribution.reusePort
    /// nil: connections may stay idle for ever.
    var idleTimeout: Duration?
    /// The runtime options: `--buffer-budget`.
    var runtime = RuntimeOptions()
    /// `--udp`: a UDP echo server.
    var udp = false
    /// `--unix PATH`: a Unix socket echo server at PATH.
    var unixAddress: UnixAddress?

    /// The options that take a value.
    static let valued: Set = ["--host", "--port", "--grace-period", "--idle-timeout", "--loops", "--unix",
                              "--buffer-budget", "--distribution"]

    /// The options in `arguments`; a usage error exits 2.
    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        var given: Set<String> = []
        while let flag = iterator.next() {
            given.insert(flag)
            if flag == "--poll" {
                poll = true
                continue
            }
            if flag == "--udp" {
                udp = true
                continue
            }
            guard Self.valued.contains(flag) else { command.usageError("unknown option \(flag)") }
            let value = command.value(after: flag, in: &iterator)
            switch flag {
            case "--host": host = value
            case "--port": port = command.number(value, for: flag, in: 0...65535)
            case "--grace-period": gracePeriod = command.seconds(value, for: flag, upTo: 3600, allowingZero: true)
            case "--idle-timeout": idleTimeout = command.seconds(value, for: flag, upTo: 86_400, allowingZero: false)
            case "--loops": loops = command.number(value, for: flag, in: 1...1024)
            case "--unix":
                do throws(WeftError) {
                    unixAddress = try UnixAddress(parsing: value)
                } catch {
                    command.usageError("--unix takes a path or @name: \(error.detail)")
                }
            case "--buffer-budget":
                runtime.connectionBufferBudget = command.number(value, for: flag, in: 1...(1 << 20), unit: "MiB") << 20
            case "--distribution":
                switch value {
                case "reuseport": distribution = .reusePort
                case "handoff": distribution = .handOff
                default: command.usageError("--distribution takes reuseport or handoff, not '\(value)'")
                }
            default: command.usageError("unknown option \(flag)")
            }
        }
        if poll, let loops, loops != 1 { command.usageError("--poll serves on one loop; drop --loops \(loops)") }
        if udp && unixAddress != nil { command.usageError("--udp and --unix exclude each other") }
        if unixAddress != nil, let loops, loops != 1 { command.usageError("--unix serves on one loop; drop --loops \(loops)") }
        for flag in ["--host", "--port", "--distribution"] where unixAddress != nil && given.contains(flag) {
            command.usageError("\(flag) does not apply to --unix; drop it")
        }
        // Each accepted silently and ignored before: every option given applies.
        if given.contains("--distribution") && (udp || poll) {
            command.usageError("--distribution applies to TCP connections on several loops; drop it with \(udp ? "--udp" : "--poll")")
        }
        if given.contains("--buffer-budget") && udp {
            command.usageError("--buffer-budget applies to connections; drop it with --udp (a UDP socket's queues have bounds of their own)")
        }
        if given.contains("--grace-period") && udp {
            command.usageError("--grace-period applies to connections; drop it with --udp (a UDP echo stops at once)")
        }
        if idleTimeout != nil && (udp || unixAddress != nil) {
            command.usageError("--idle-timeout applies to TCP connections only; drop it with \(udp ? "--udp" : "--unix")")
        }
    }
}

/// Accepts connections until the listener closes, handing each to `serve`
/// (which spawns its echo task). TCP's and the Unix socket's poll servers share it.
struct AcceptLoop<Connections: PollStream, Connection>: Future where Connections.Element == Result<Connection, WeftError> {
    var connections: Connections
    let serve: (Connection) -> Void

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            switch connections.pollNext(&context) {
            case .pending:
                return .pending
            case .ready(nil):
                return .ready(())
            case .ready(.failure(let error)?):
                StatusLines.say("weft-echo: \(error)")
            case .ready(.success(let connection)?):
                serve(connection)
            }
        }
    }
}

/// Echoes until the client half-closes, fails, sends nothing for
/// `idleTimeout` (`--idle-timeout`), or has not taken an echo (one read's
/// bytes, up to 64 KiB) within as long: the timeout covers the whole write,
/// so a client reading slower than that is closed too.
struct IdleEcho: Future {
    enum Stage {
        case reading(Timeout<ReadSome>)
        case writing(Timeout<WriteAll<TCPStream>>)
    }

    let stream: TCPStream
    let idleTimeout: Duration
    var stage: Stage

    init(stream: TCPStream, idleTimeout: Duration) {
        self.stream = stream
        self.idleTimeout = idleTimeout
        stage = .reading(timeoutFuture(idleTimeout, stream.readFuture()))
    }

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            switch stage {
            case .reading(var read):
                switch read.poll(&context) {
                case .pending:
                    stage = .reading(read)
                    return .pending
                case .ready(.success(.success(let bytes))) where !bytes.isEmpty:
                    stage = .writing(timeoutFuture(idleTimeout, stream.writeAll(bytes)))
                case .ready:
                    return .ready(())  // idle too long, end of stream, or an error
                }
            case .writing(var write):
                switch write.poll(&context) {
                case .pending:
                    stage = .writing(write)
                    return .pending
                case .ready(.success(.success)):
                    stage = .reading(timeoutFuture(idleTimeout, stream.readFuture()))
                case .ready:
                    return .ready(())  // its echo not taken in time, or an error
                }
            }
        }
    }
}

/// The poll-based TCP server: hand-written futures on a Runtime driven by this thread.
func servePolling(_ options: Options, on address: SocketAddress) throws(WeftError) {
    try runPolling(options) { runtime, connections throws(WeftError) in
        let listener = try TCPListener.bind(address, runtime: runtime)
        announce(try listener.localAddress)
        let accept = AcceptLoop(connections: listener.incoming) { stream in
            try? stream.setNoDelay(true)
            // Echo until the client half-closes, then close: copy has flushed
            // every byte by then, and the client reads end of stream. (A
            // half-close back would cost a shutdown and an epoll_ctl more.)
            if let idleTimeout = options.idleTimeout {
                spawn(connections.track(IdleEcho(stream: stream, idleTimeout: idleTimeout).map { stream.close() }))
            } else {
                spawn(connections.track(copy(from: stream, to: stream).map { _ in stream.close() }))
            }
        }
        return (accept, listener.close)
    }
}

/// The poll-based Unix socket server (`--unix PATH --poll`): the TCP one's
/// echo, over a Unix socket.
func serveUnixPolling(_ options: Options, at address: UnixAddress) throws(WeftError) {
    try runPolling(options) { runtime, connections throws(WeftError) in
        let listener = try UnixListener.bind(address, runtime: runtime)
        announce(address, kind: "unix")
        let accept = AcceptLoop(connections: listener.incoming) { stream in
            spawn(connections.track(copy(from: stream, to: stream).map { _ in stream.close() }))
        }
        return (accept, listener.close)  // close removes the socket file
    }
}

/// Runs a poll-based server on a Runtime driven by this thread: `listen`
/// binds (after the signals are watched) and returns the accept loop and how
/// to close its listener. On SIGINT or SIGTERM it stops accepting and drains
/// the connections `listen` tracked, as the async server does.
func runPolling<Accept: Future<Void>>(
    _ options: Options,
    listen: (Runtime, TaskTracker) throws(WeftError) -> (accept: Accept, close: () -> Void)
) throws(WeftError) {
    let runtime = try Runtime(options: options.runtime)
    var stop = shutdownSignal()
    try stop.install(runtime: runtime)
    // Watched before the address is announced: an early SIGUSR1 must not be fatal.
    var reports = signals(SIGUSR1)
    try reports.install(runtime: runtime)
    let connections = TaskTracker()
    let (accept, closeListener) = try listen(runtime, connections)
    let reporter = runtime.spawn(reports.fold(()) { _, _ in printReport() }, name: "SIGUSR1 reporter")
    // Ended only with the runtime: its stream may be the last copy of the
    // SIGUSR1 handler, and once that closed, a SIGUSR1 (a report asked for
    // during the drain) would end the process.
    defer { reporter.abort() }
    let ended = try runtime.block(on: select(either: stop, or: accept))
    closeListener()
    if case .left(let signal) = ended {
        connections.close()
        sayDraining(connections.liveCount, signal: signal, options)
        switch try runtime.block(on: select(either: timeoutFuture(options.gracePeriod, connections.waitFuture()), or: stop)) {
        case .left(let drained): reportDrain(drained, stillOpen: connections.liveCount)
        case .right(let second): command.exitAtOnce(afterSignal: second, connectionsOpen: connections.liveCount)
        }
    }
    try runtime.shutdown()  // cancels the connections still open
}

/// The async server: one Swift task per connection, on the loop of a
/// LoopGroup that accepted it.
func serveAsync(_ options: Options, on address: SocketAddress) async throws {
    let group = try LoopGroup(loops: options.loops, name: "weft-echo", options: options.runtime)
    // Signals and the drain are watched from the first loop.
    let control = group.loops[0]
    try await control.spawn { () async throws in
        var stop = shutdownSignal()
        try stop.install()  // before listening: an early SIGTERM must not be fatal
        let reporter = try reportOnSIGUSR1(on: control) { await printReports(group) }
        defer { reporter.cancel() }
        // Two handlers rather than one with a branch: the default one's frame
        // must stay small (an idle connection's task fits one stack slab).
        // The server counts the connections for the drain, from their accept.
        let handler: ConnectionHandler
        if let idleTimeout = options.idleTimeout {
            handler = { connection in
                try? connection.setNoDelay(true)
                defer { connection.close() }
                try await echoUntilIdle(connection, idleTimeout: idleTimeout)
            }
        } else {
            handler = { connection in
                try? connection.setNoDelay(true)
                defer { connection.close() }  // every write has completed by then
                while true {
                    let bytes = try await connection.read()
                    if bytes.isEmpty { break }
                    try await connection.write(bytes)
                }
            }
        }
        let server = try await group.serve(address, distribution: options.distribution, handler: handler)
        announce(server.localAddress)
        let signal = try await value(of: stop)
        try await drain(after: signal, options, stillOpen: { server.liveConnections },
                        stopAccepting: { await server.close() }, finished: server.waitForConnectionsFuture())
        // How the connections spread over the loops (read by Benchmarks/echo/scaling.py).
        StatusLines.say("weft-echo: conns_per_loop=\(server.connectionsPerLoop.map(String.init).joined(separator: ","))")
    }.value
    group.shutdown()  // cancels the connections still open
}

/// The async echo with `--idle-timeout`: each read, and each write of its
/// echo, waits at most `idleTimeout`; a connection that sends nothing for
/// that long, or has not taken an echo (up to 64 KiB) within it, is closed (a
/// peer that stops reading held it for ever). Apart, so the frame of the default echo loop
/// stays as small as it was.
func echoUntilIdle(_ connection: TCPStream, idleTimeout: Duration) async throws {
    while case .success(let read) = try await value(of: timeoutFuture(idleTimeout, connection.readFuture())) {
        let bytes = try read.get()
        if bytes.isEmpty { return }
        guard case .success(let written) = try await value(of: timeoutFuture(idleTimeout, connection.writeAll(bytes))) else {
            return
        }
        try written.get()
    }
}

/// Watches SIGUSR1 from now on (before the server listens: an early one must
/// not be fatal) and runs `report` on `loop` for each, until the returned
/// task is cancelled. Call it on `loop`.
func reportOnSIGUSR1(on loop: LoopThread, _ report: @escaping @Sendable () async -> Void) throws -> Task<Void, Error> {
    var reports = signals(SIGUSR1)
    try reports.install()
    return loop.spawn { [reports] in
        for try await _ in reports.values { await report() }
    }
}

/// The async servers' graceful shutdown after the first SIGINT or SIGTERM
/// (`signal`): watches for a second one, which exits at once (one arriving
/// before this install finds no watcher and ends the process by its default
/// action), stops accepting (counting no new connection), then waits up to
/// the grace period for `finished`: ready once the `stillOpen()` connections
/// are gone.
nonisolated(nonsending)
func drain<Finished: Future<Void>>(
    after signal: Int32, _ options: Options, stillOpen: () -> Int,
    stopAccepting: () async -> Void, finished: sending Finished
) async throws {
    var again = shutdownSignal()
    try again.install()
    await stopAccepting()
    sayDraining(stillOpen(), signal: signal, options)
    switch try await value(of: select(either: timeoutFuture(options.gracePeriod, finished), or: again)) {
    case .left(let drained): reportDrain(drained, stillOpen: stillOpen())
    case .right(let second): command.exitAtOnce(afterSignal: second, connectionsOpen: stillOpen())
    }
}

/// Says how many connections the drain waits for.
func sayDraining(_ open: Int, signal: Int32, _ options: Options) {
    StatusLines.say("weft-echo: signal \(signal), stopped accepting; waiting up to \(options.gracePeriod) for \(open) connection(s)")
}

func reportDrain(_ drained: Result<Void, TimedOut>, stillOpen: Int) {
    if case .failure = drained {
        StatusLines.say("weft-echo: \(stillOpen) connection(s) still open after the grace period; closing them")
    }
    StatusLines.say("weft-echo: shut down")
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

/// Prints the line that tells scripts and tests where the server listens:
/// `listening on ADDRESS`, followed by ` (udp)` or ` (unix)` for those echoes.
func announce(_ address: some CustomStringConvertible, kind: String? = nil) {
    SampleSupport.announce("listening on \(address)" + (kind.map { " (\($0))" } ?? ""))
}

/// The UDP echo (`--udp`): a socket per loop, all bound to the address with
/// SO_REUSEPORT (the first to the port asked for, the others to the port it
/// got), each echoing every datagram to its sender until the signal.
func serveUDP(_ options: Options, on address: SocketAddress) async throws {
    let group = try LoopGroup(loops: options.loops, name: "weft-echo", options: options.runtime)
    let control = group.loops[0]
    try await control.spawn { () async throws in
        var stop = shutdownSignal()
        try stop.install()
        let reporter = try reportOnSIGUSR1(on: control) { await printReports(group) }
        defer { reporter.cancel() }
        let shared = UDPSocket.Options(reusePort: true, receiveBufferSize: 4 << 20)
        if address.port != 0 {
            // Bound with SO_REUSEPORT, the first socket shared a port another
            // process of this user held the same way (the kernel split the
            // datagrams between them): a probe without it fails with
            // EADDRINUSE, as the TCP echo's listeners check.
            try UDPSocket.bind(address).close()
        }
        let first = try UDPSocket.bind(address, options: shared)
        let bound = try first.localAddress
        var sockets = [first]
        for loop in group.loops.dropFirst() {
            sockets.append(try await loop.spawn { try UDPSocket.bind(bound, options: shared) }.value)
        }
        let echoes = zip(group.loops, sockets).map { loop, socket in
            loop.spawn {
                // receive(into:) rather than `socket.datagrams`: the
                // AsyncSequence's iterator is generic across the module
                // boundary (its metadata lookups cost about 8 % of the echo's
                // CPU), and each datagram would be an array of its own.
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let receipt: UDPReceipt
                    do {
                        receipt = try await socket.receive(into: &buffer)
                    } catch let error as WeftError where error.kind != .closed {
                        continue  // e.g. ECONNREFUSED from an ICMP error: go on, as the poll echo does
                    }
                    // A datagram that cannot go back (past Weft's 65,507-byte
                    // bound over IPv6, to port 0, refused by a firewall) is
                    // dropped, as the kernel drops what it cannot deliver; the
                    // echo goes on for everyone else (a failed send ended it,
                    // leaving its socket bound and nobody reading it).
                    _ = try? await socket.send(buffer[..<receipt.count], to: receipt.sender)
                }
            }
        }
        announce(bound, kind: "udp")
        let signal = try await value(of: stop)
        for socket in sockets { socket.close() }
        for echo in echoes { _ = await echo.result }
        StatusLines.say("weft-echo: signal \(signal), shut down")
    }.value
    group.shutdown()
}

/// A UDP echo as a hand-written future (`--udp --poll`): receive into one
/// buffer, then send its filled prefix back, for ever (until the socket closes).
///
/// The buffer passes from the receive future to the send (as a slice) and
/// back, so it has one owner when the receive writes into it (no copy on
/// write). Each future is polled where it is stored: moving a future out of
/// an enum and back on every poll cost more than the rest of the echo's code.
struct UDPEcho: Future {
    let socket: UDPSocket
    /// The receive in progress (it holds the buffer), or nil while sending.
    var receiving: UDPReceiveInto?
    /// The send in progress (it holds a slice of `buffer`), or nil.
    var sending: UDPSend?
    /// The buffer while `sending` sends its filled prefix; empty otherwise.
    var buffer: [UInt8] = []

    init(socket: UDPSocket) {
        self.socket = socket
        receiving = socket.receiveFuture(into: [UInt8](repeating: 0, count: 65_536))
    }

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            if sending != nil {
                guard case .ready = sending!.poll(&context) else { return .pending }
                sending = nil  // its slice of the buffer goes: the buffer has one owner again
                var lent: [UInt8] = []
                swap(&lent, &buffer)
                receiving = socket.receiveFuture(into: consume lent)
            }
            guard case .ready(let (received, receipt)) = receiving!.poll(&context) else { return .pending }
            receiving = nil
            switch receipt {
            case .failure(let error) where error.kind == .closed:
                return .ready(())
            case .failure:  // e.g. ECONNREFUSED from an ICMP error; go on
                receiving = socket.receiveFuture(into: received)
            case .success(let receipt):
                sending = socket.sendFuture(received[..<receipt.count], to: receipt.sender)
                buffer = received
            }
        }
    }
}

/// The poll-based UDP echo (`--udp --poll`): one socket on a Runtime driven by this thread.
func serveUDPPolling(_ options: Options, on address: SocketAddress) throws(WeftError) {
    let runtime = try Runtime(options: options.runtime)
    var stop = shutdownSignal()
    try stop.install(runtime: runtime)
    var reports = signals(SIGUSR1)
    try reports.install(runtime: runtime)
    let socket = try UDPSocket.bind(address, options: UDPSocket.Options(receiveBufferSize: 4 << 20), runtime: runtime)
    announce(try socket.localAddress, kind: "udp")
    let reporter = runtime.spawn(reports.fold(()) { _, _ in printReport() }, name: "SIGUSR1 reporter")
    let ended = try runtime.block(on: select(either: stop, or: UDPEcho(socket: socket)))
    reporter.abort()
    socket.close()
    if case .left(let signal) = ended { StatusLines.say("weft-echo: signal \(signal), shut down") }
    try runtime.shutdown()
}

/// The Unix socket echo (`--unix PATH`): one loop, a Swift task per connection.
func serveUnix(_ options: Options, at address: UnixAddress) async throws {
    let loop = try LoopThread(name: "weft-echo", options: options.runtime)
    try await loop.spawn { () async throws in
        var stop = shutdownSignal()
        try stop.install()
        let reporter = try reportOnSIGUSR1(on: loop) { printReport() }
        defer { reporter.cancel() }
        let listener = try UnixListener.bind(address)
        let connections = TaskTracker()
        let acceptor = loop.spawn {
            for try await connection in listener.connections {
                let live = connections.token()
                loop.spawn {
                    defer {
                        connection.close()
                        live.release()
                    }
                    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                    while case let count = try await connection.read(into: &buffer), count > 0 {
                        try await connection.write(buffer[..<count])
                    }
                }
            }
        }
        announce(address, kind: "unix")
        let signal = try await value(of: stop)
        try await drain(after: signal, options, stillOpen: { connections.liveCount }, stopAccepting: {
            listener.close()  // removes the socket file
            acceptor.cancel()
            connections.close()
        }, finished: connections.waitFuture())
    }.value
    loop.shutdown()
}

let options = Options(command.arguments())
command.printAcceptFailures()
do {
    if let unixAddress = options.unixAddress {
        if options.poll {
            try serveUnixPolling(options, at: unixAddress)
        } else {
            try await serveUnix(options, at: unixAddress)
        }
    } else {
        let address = try await listenAddress(host: options.host, port: options.port)
        if options.udp && options.poll {
            try serveUDPPolling(options, on: address)
        } else if options.udp {
            try await serveUDP(options, on: address)
        } else if options.poll {
            try servePolling(options, on: address)
        } else {
            try await serveAsync(options, on: address)
        }
    }
} catch {
    command.fail(error)
}
StatusLines.finish()
