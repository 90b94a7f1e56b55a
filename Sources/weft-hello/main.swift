// weft-hello: the async book's final project, a concurrent web server.
//
//     swift run weft-hello [--host 127.0.0.1] [--port 7878]
//     curl http://127.0.0.1:7878/          # hello.html
//     curl http://127.0.0.1:7878/sleep     # the same, 5 s later; others are not held up
//
// Every connection is its own task; exits with status 0 on SIGINT or SIGTERM.

import Glibc
import HelloServer
import Weft

func fail(_ message: String) -> Never {
    print("weft-hello: \(message); usage: weft-hello [--host H] [--port P]")
    exit(1)
}

var host = "127.0.0.1"
var port = 7878
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let flag = arguments.next() {
    guard let value = arguments.next() else { fail("\(flag) needs a value") }
    switch flag {
    case "--host": host = value
    case "--port":
        guard let number = Int(value) else { fail("--port takes a number, not '\(value)'") }
        port = number
    default: fail("unknown option \(flag)")
    }
}

/// Accepts connections and spawns the book's handler for each.
struct Serve: Future {
    var connections: Incoming

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            switch connections.pollNext(&context) {
            case .pending: return .pending
            case .ready(nil): return .ready(())
            case .ready(.failure(let error)?): print("weft-hello: \(error)")
            case .ready(.success(let stream)?): spawn(HandleConnection(stream: stream))
            }
        }
    }
}

do {
    let runtime = try Runtime()
    let listener = try TCPListener.bind(SocketAddress(host: host, port: port), runtime: runtime)
    print("listening on \(try listener.localAddress)")
    fflush(nil)  // the address line must reach a pipe at once
    _ = try runtime.block(on: select(either: shutdownSignal(), or: Serve(connections: listener.incoming)))
    listener.close()
    try runtime.shutdown()
} catch {
    fail("\(error)")
}
