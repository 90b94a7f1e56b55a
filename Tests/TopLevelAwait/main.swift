// Top-level code, where Swift's overload ranking once picked a poll builder
// over its async twin: `try await sleep(for:)` built a `Sleep` future, dropped
// it and returned at once, with only a warning. The poll forms are now spelled
// `…Future` (docs/ARCHITECTURE.md, "Poll forms and async forms"), so each line
// below can only mean the async operation. `TopLevelProgramTests` runs this
// program and checks what it prints.
import Weft

func milliseconds(since start: ContinuousClock.Instant) -> Int {
    let elapsed = (ContinuousClock.now - start).components
    return Int(elapsed.seconds) * 1000 + Int(elapsed.attoseconds / 1_000_000_000_000_000)
}

var start = ContinuousClock.now
try await sleep(for: .milliseconds(300))
print("sleep(for:) \(milliseconds(since: start))")

start = ContinuousClock.now
try await sleep(until: start + .milliseconds(200))
print("sleep(until:) \(milliseconds(since: start))")

start = ContinuousClock.now
do {
    _ = try await timeout(.milliseconds(100)) { () async throws -> Int in
        try await sleep(for: .seconds(10))
        return 1
    }
    print("timeout \(milliseconds(since: start)) finished")
} catch is TimedOut {
    print("timeout \(milliseconds(since: start)) timed out")
}

// The listener and streams live on the shared loop; the awaits hop there,
// and the listener's address (fixed at bind) is readable from here.
let listener = try await TCPListener.bind(host: "127.0.0.1", port: 0)
let client = try await TCPStream.connect(to: try listener.localAddress)
let server = try await listener.accept()
try await client.write(Array("ping".utf8))
let received = try await server.read(upTo: 4)
print("tcp \(String(decoding: received, as: UTF8.self))")

let (sender, receiver) = boundedChannel(of: Int.self, capacity: 1)
try await sender.send(7)
print("channel \(try await receiver.receive() ?? -1)")
