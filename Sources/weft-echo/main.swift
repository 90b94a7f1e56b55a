// weft-echo: a TCP echo server on Weft.
//
//     swift run -c release weft-echo [--host 127.0.0.1] [--port 7000]
//
// Prints the address it listens on, echoes every byte back on every
// connection, and exits with status 0 on SIGINT or SIGTERM.

import Glibc
import Weft

struct Options {
    var host = "127.0.0.1"
    var port = 7000

    init(_ arguments: [String]) throws(WeftError) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
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
    WeftError(.invalidArgument, operation: "weft-echo", detail: "\(problem); usage: weft-echo [--host H] [--port P]")
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

do {
    let options = try Options(CommandLine.arguments)
    let runtime = try Runtime()
    let address = try SocketAddress(host: options.host, port: options.port)
    let listener = try TCPListener.bind(address, runtime: runtime)
    print("listening on \(try listener.localAddress)")
    fflush(nil)  // the address line must reach a pipe at once
    let ended = try runtime.block(on: select(either: shutdownSignal(), or: AcceptLoop(connections: listener.incoming)))
    if case .left(let signal) = ended {
        print("weft-echo: signal \(signal), shutting down")
    }
    listener.close()
    try runtime.shutdown()
} catch {
    print("weft-echo: \(error)")
    exit(1)
}
