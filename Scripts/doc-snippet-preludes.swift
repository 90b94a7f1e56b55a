// What documentation fragments use without declaring it, one prelude each
// (Scripts/check-doc-snippets). A snippet names the preludes it needs in its
// marker (`<!-- snippet: prelude: listening -->`); their statements run before
// it, in the same function (at file scope for a `declarations` snippet). Keep
// them to setting up names; what a snippet shows belongs in the snippet.

// prelude: listening
// A runtime and a listener on a free loopback port that nobody accepts from:
// the kernel completes connections to it, so a client can connect and write.
let runtime = try Runtime()
let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
let address = try listener.localAddress
let hello = Array("hello\n".utf8)

// prelude: echoServer
// `address`: an echo server on a loop thread of its own, shut down when the snippet returns.
let echoLoop = try LoopThread(name: "doc-echo")
defer { echoLoop.shutdown() }
let address = try await echoLoop.spawn { () async throws -> SocketAddress in
    let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
    let bound = try listener.localAddress
    echoLoop.spawn {
        for try await connection in listener.connections {
            echoLoop.spawn {
                while case let bytes = try await connection.read(), !bytes.isEmpty {
                    try await connection.write(bytes)
                }
            }
        }
    }
    return bound
}.value

// prelude: acceptedStream
// `stream`: the server side of a loopback connection whose client sends
// "ping", half-closes, and reads back what it is sent.
let acceptLoop = try LoopThread(name: "doc-accept")
defer { acceptLoop.shutdown() }
let stream = try await acceptLoop.spawn { () async throws -> TCPStream in
    let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
    let address = try listener.localAddress
    acceptLoop.spawn {
        let client = try await TCPStream.connect(to: address)
        try await client.write(Array("ping".utf8))
        try await client.shutdown()
        _ = try await client.read()
    }
    return try await listener.accept()
}.value

// prelude: udpSocket
// `socket`: a UDP socket on a free loopback port.
let socket = try UDPSocket.bind(SocketAddress("127.0.0.1:0"))

// prelude: loop
// `loop`: a loop thread (at file scope, for declarations that use it).
fileprivate let loop = try! LoopThread(name: "doc-loop")

// prelude: handleConnection
// The async book's connection handler, reduced: closes the connection.
func handleConnection(_ connection: Result<TCPStream, WeftError>) -> some Future<Void> {
    ready(()).map { _ -> Void in if let stream = try? connection.get() { stream.close() } }
}

// prelude: metricsFactory
// `myFactory`: the metrics backend an application would bootstrap.
import CoreMetrics
let myFactory = NOOPMetricsHandler.instance

// prelude: serviceGroupParts
// `logger`, and `echo`: a handler that echoes what it reads until end of stream.
import Logging
let logger = Logger(label: "doc-snippet")
@Sendable func echo(_ stream: TCPStream) async throws {
    while case let bytes = try await stream.read(), !bytes.isEmpty {
        try await stream.write(bytes)
    }
}
