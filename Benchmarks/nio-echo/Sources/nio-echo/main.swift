// SwiftNIO's echo server, for Benchmarks/echo/compare.py: the shape of
// SwiftNIO's own NIOEchoServer example on one event loop (the issue's
// "SwiftNIO, 1 loop"), with the options the C baseline sets (backlog 1024,
// SO_REUSEADDR, TCP_NODELAY on accepted connections). Each read is written
// back as it arrives and flushed when the loop's reads for the channel end
// (`channelReadComplete`); a peer's end of stream closes the channel, as the
// C server closes on EOF.
//
//   nio-echo --port P [--host 127.0.0.1]
//
// Prints `listening on HOST:PORT` (the real port for --port 0) as its first
// line, and exits 0 on SIGINT or SIGTERM.
import Glibc
import NIOCore
import NIOPosix

final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Writes `line` and a newline to standard error.
func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func option(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

guard let portText = option("--port"), let port = Int(portText), (0...65_535).contains(port) else {
    printError("usage: nio-echo --port P [--host 127.0.0.1]")
    exit(2)
}
let host = option("--host") ?? "127.0.0.1"

for signalNumber in [SIGINT, SIGTERM] {
    signal(signalNumber) { _ in _exit(0) }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
    }
do {
    let channel = try bootstrap.bind(host: host, port: port).wait()
    print("listening on \(host):\(channel.localAddress?.port ?? port)")
    fflush(nil)
    try channel.closeFuture.wait()
} catch {
    printError("nio-echo: \(error)")
    exit(1)
}
