// weft-hello: the async book's final project, a concurrent web server.
//
//     swift run weft-hello [--host 127.0.0.1] [--port 7878]
//     curl http://127.0.0.1:7878/          # hello.html
//     curl http://127.0.0.1:7878/sleep     # the same, 5 s later; others are not held up
//
// Every connection is its own Swift task on one LoopThread, running the book's
// handler (a poll-based future, generic over byte streams); exits with status 0
// on SIGINT or SIGTERM.

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

do {
    let loop = try LoopThread(name: "weft-hello")
    let address = try SocketAddress(host: host, port: port)
    try await loop.spawn { () async throws -> Void in
        var stop = shutdownSignal()
        try stop.install()  // before announcing: an early SIGTERM must not be fatal
        let listener = try TCPListener.bind(address)
        print("listening on \(try listener.localAddress)")
        fflush(nil)  // the address line must reach a pipe at once
        let server = loop.spawn {
            for try await connection in listener.connections {
                loop.spawn { _ = try await value(of: HandleConnection(stream: connection)) }
            }
        }
        _ = try await value(of: stop)
        server.cancel()
    }.value
    loop.shutdown()
} catch {
    fail("\(error)")
}
