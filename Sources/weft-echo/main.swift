// weft-echo: a TCP echo server on Weft.
//
//     swift run -c release weft-echo [--host 127.0.0.1] [--port 7000] [--poll]
//
// Prints the address it listens on, echoes every byte back on every
// connection, and exits with status 0 on SIGINT or SIGTERM.
//
// By default each connection is Swift async code running on a LoopThread;
// `--poll` serves with hand-written futures on a Runtime instead (the worked
// example of poll-based code).

import Glibc
import Weft

struct Options {
    var host = "127.0.0.1"
    var port = 7000
    var poll = false

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
            default: throw usage("unknown option \(flag)")
            }
        }
    }
}

func usage(_ problem: String) -> WeftError {
    WeftError(.invalidArgument, operation: "weft-echo", detail: "\(problem); usage: weft-echo [--host H] [--port P] [--poll]")
}

/// Accepts connections forever, spawning an echo task for each.
struct AcceptLoop: Future {
    var connections: Incoming

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
                // Echo until the client half-closes, then half-close back.
                spawn(copy(from: stream, to: stream).then { _ in stream.shutdown() })
            }
        }
    }
}

/// The poll-based server: hand-written futures on a Runtime driven by this thread.
func servePolling(_ options: Options) throws(WeftError) {
    let runtime = try Runtime()
    var stop = shutdownSignal()
    try stop.install(runtime: runtime)
    let listener = try TCPListener.bind(SocketAddress(host: options.host, port: options.port), runtime: runtime)
    announce(try listener.localAddress)
    let ended = try runtime.block(on: select(either: stop, or: AcceptLoop(connections: listener.incoming)))
    if case .left(let signal) = ended { print("weft-echo: signal \(signal), shutting down") }
    listener.close()
    try runtime.shutdown()
}

/// The async server: one Swift task per connection, all on one LoopThread.
func serveAsync(_ options: Options) async throws {
    let loop = try LoopThread(name: "weft-echo")
    let address = try SocketAddress(host: options.host, port: options.port)
    let signal = try await loop.spawn { () async throws -> Int32 in
        var stop = shutdownSignal()
        try stop.install()
        let listener = try TCPListener.bind(address)
        announce(try listener.localAddress)
        let server = loop.spawn {
            for try await connection in listener.connections {
                try? connection.setNoDelay(true)
                loop.spawn {
                    while true {
                        let bytes = try await connection.read()
                        if bytes.isEmpty { break }
                        try await connection.write(bytes)
                    }
                    try await connection.shutdown()
                }
            }
        }
        let signal = try await value(of: stop)
        server.cancel()
        return signal
    }.value
    print("weft-echo: signal \(signal), shutting down")
    loop.shutdown()
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
