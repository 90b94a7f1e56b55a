import Testing
import Weft

@Suite("TCP ping-pong")
struct PingPongTests {
    static let rounds = 100

    @Test("a client and a server exchange 100 pings and pongs over one connection")
    func pingPong() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        let ping = NetTest.bytes("ping")
        let pong = NetTest.bytes("pong")
        let served = NetTest.Cell(0)

        let server = listener.acceptFuture().onSuccess { stream in
            NetTest.steps(Self.rounds) { _ in
                stream.readExact(4).onSuccess { request in
                    served.value += 1
                    return request == ping
                        ? stream.writeAll(pong).boxed()
                        : ready(.failure(NetTest.mismatch("server got \(request)"))).boxed()
                }
            }
        }
        let client = TCPStream.connectFuture(to: address).onSuccess { stream in
            NetTest.steps(Self.rounds) { round in
                stream.writeAll(ping).onSuccess { _ in
                    stream.readExact(4).map { reply in
                        reply.flatMap { $0 == pong ? .success(()) : .failure(NetTest.mismatch("round \(round): \($0)")) }
                    }
                }
            }
        }
        let (serverResult, clientResult) = try runtime.block(on: timeoutFuture(.seconds(20), join(server, client))).get()
        try serverResult.get()
        try clientResult.get()
        #expect(served.value == Self.rounds)

        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("the read and write halves of a split stream work from two tasks of one runtime")
    func splitHalves() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let listener = try NetTest.bindLoopback(runtime)
        let address = try listener.localAddress
        runtime.spawn(NetTest.acceptLoop(listener, serve: NetTest.echo))

        let message = NetTest.bytes(String(repeating: "half and half ", count: 1000))
        let received = try runtime.block(on: timeoutFuture(.seconds(20), TCPStream.connectFuture(to: address).onSuccess { stream in
                let (reader, writer) = stream.split()
                let writing = spawn(writer.writeAll(message).onSuccess { writer.shutdownFuture() })
                let reading = spawn(reader.readToEnd())
                return join(writing, reading).map { written, read -> Result<[UInt8], WeftError> in
                    guard case .success(let writeResult) = written, case .success(let readResult) = read else {
                        return .failure(NetTest.mismatch("a half's task was cancelled"))
                    }
                    return writeResult.flatMap { readResult }
                }
        })).get().get()
        #expect(received == message)

        listener.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
