// Benchmarks of Weft's channels and sync primitives (see Sources/Weft/Sync).
// Wired as subcommands by main.swift; each prints the standard last line.

import Glibc
import Weft

// MARK: - channel

/// Sends 0..<n through a bounded sender: `trySend` while there is room, a
/// waiting `send` when full. Drops its sender when done, ending the stream.
struct ChannelProducer: Future {
    var sender: ChannelSender<Int>?
    let n: Int
    var next = 0
    var waiting: ChannelSend<Int>?

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            if waiting != nil {
                guard case .ready = waiting!.poll(&context) else { return .pending }
                waiting = nil
                next += 1
            }
            guard let sender else { return .ready(()) }
            while next < n {
                switch sender.trySend(next) {
                case .success:
                    next += 1
                case .failure(.full(let value)):
                    waiting = sender.sendFuture(value)
                case .failure(.closed):
                    self.sender = nil
                    return .ready(())
                }
                if waiting != nil { break }
            }
            if waiting == nil {
                self.sender = nil
                return .ready(())
            }
        }
    }
}

/// Receives until the stream ends; ready with the count and sum.
struct ChannelConsumer: Future {
    var receiver: ChannelReceiver<Int>
    var count = 0
    var sum = 0

    mutating func poll(_ context: inout Context) -> Poll<(count: Int, sum: Int)> {
        while true {
            switch receiver.pollNext(&context) {
            case .pending: return .pending
            case .ready(let value?):
                count += 1
                sum &+= value
            case .ready(nil): return .ready((count, sum))
            }
        }
    }
}

/// Same-loop throughput: one producer task and one consumer task, `n` messages
/// through a bounded channel of 1,024.
func benchChannel(n: Int) throws {
    let runtime = try Runtime()
    let (sender, receiver) = boundedChannel(of: Int.self, capacity: 1024)
    let heapBefore = heapBytesInUse()
    let start = ContinuousClock.now
    runtime.spawn(ChannelProducer(sender: sender, n: n))
    _ = consume sender
    let consumer = runtime.spawn(ChannelConsumer(receiver: receiver))
    let (count, _) = try runtime.block(on: consumer).get()
    let elapsed = nanosecondsSince(start)
    precondition(count == n, "channel benchmark lost messages")
    report("channel", n: n, wallNanoseconds: elapsed,
           bytesPerOp: Double(max(0, heapBytesInUse() - heapBefore)) / Double(n))
}

// MARK: - oneshot

/// What a oneshot rally passes: the sender to hit the ball back through.
struct Baton: Sendable {
    let reply: OneshotSender<Baton>
}

/// Waits for the ball on a oneshot, then hits it back through a new oneshot
/// whose sender travels with the ball; `hits` times. Ready when its hits are
/// made or the other side stopped (its receiver sees the channel close).
struct OneshotRallyPlayer: Future {
    var awaiting: OneshotReceiver<Baton>
    let hits: Int
    var made = 0

    mutating func poll(_ context: inout Context) -> Poll<Int> {
        while true {
            guard case .ready(let received) = awaiting.poll(&context) else { return .pending }
            guard made < hits, case .success(let ball) = consume received else { return .ready(made) }
            let (reply, replied) = oneshotChannel(of: Baton.self)
            // Moved out of the ball, so that sending needs no copy of the sender.
            let hitBack = ball.reply
            _ = consume ball
            try? hitBack.send(Baton(reply: consume reply))
            made += 1
            awaiting = consume replied
        }
    }
}

/// Oneshot hand-off between two tasks on one loop: every hand-off creates a
/// channel, sends through the previous one, wakes the other task, and
/// receives; `n` hand-offs in all.
func benchOneshot(n: Int) throws {
    let runtime = try Runtime()
    let (serve, served) = oneshotChannel(of: Baton.self)
    let (firstReply, firstReplied) = oneshotChannel(of: Baton.self)
    let start = ContinuousClock.now
    // Both players are tasks, as in `wake`, so no hand-off also polls a join.
    let receiver = runtime.spawn(OneshotRallyPlayer(awaiting: served, hits: n / 2))
    let server = runtime.spawn(OneshotRallyPlayer(awaiting: firstReplied, hits: (n - 1) / 2))
    try? serve.send(Baton(reply: firstReply))
    _ = consume firstReply
    let (made, received) = try runtime.block(on: join(server, receiver))
    let handOffs = 1 + (try made.get()) + (try received.get())
    report("oneshot", n: handOffs, wallNanoseconds: nanosecondsSince(start), bytesPerOp: 0)
}

// MARK: - notify

/// Waits on `mine`, then notifies `theirs`; `rounds` times.
struct NotifyPlayer: Future {
    let mine: Notify
    let theirs: Notify
    let rounds: Int
    let servesFirst: Bool
    var played = 0
    var waiting: Notified?

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            if waiting == nil {
                if played == rounds { return .ready(()) }
                if servesFirst && played == 0 { theirs.notifyOne() }  // the serve
                waiting = mine.notifiedFuture()
            }
            guard case .ready = waiting!.poll(&context) else { return .pending }
            waiting = nil
            played += 1
            if !servesFirst || played < rounds { theirs.notifyOne() }
        }
    }
}

/// Notify ping-pong between two tasks on one loop: `n` hand-offs.
func benchNotify(n: Int) throws {
    let runtime = try Runtime()
    let ping = Notify()
    let pong = Notify()
    let rounds = max(1, n / 2)
    let server = runtime.spawn(NotifyPlayer(mine: pong, theirs: ping, rounds: rounds, servesFirst: true))
    let start = ContinuousClock.now
    _ = try runtime.block(on: join(NotifyPlayer(mine: ping, theirs: pong, rounds: rounds, servesFirst: false), server))
    report("notify", n: rounds * 2, wallNanoseconds: nanosecondsSince(start), bytesPerOp: 0)
}

// MARK: - cross-thread

/// Runs a closure on a new pthread.
private final class ThreadStart {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

private func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    var thread = pthread_t()
    let argument = Unmanaged.passRetained(ThreadStart(body)).toOpaque()
    let created = pthread_create(&thread, nil, { argument in
        Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue().body()
        return nil
    }, argument)
    precondition(created == 0, "pthread_create failed")
    return thread
}

/// Cross-thread throughput: a producer thread running its own runtime sends
/// `n` messages through a bounded channel of 4,096 to a consumer task on the
/// main thread's runtime (backpressure and wakes cross threads both ways).
func benchCrossThread(n: Int) throws {
    let runtime = try Runtime()
    let (sender, receiver) = boundedChannel(of: Int.self, capacity: 4096)
    let start = ContinuousClock.now
    let producer = startThread {
        do {
            let local = try Runtime()
            try local.block(on: ChannelProducer(sender: sender, n: n))
        } catch {
            fatalError("producer runtime failed: \(error)")
        }
    }
    _ = consume sender  // the producer thread's copy is the last one
    let (count, _) = try runtime.block(on: ChannelConsumer(receiver: receiver))
    let elapsed = nanosecondsSince(start)
    pthread_join(producer, nil)
    precondition(count == n, "cross-thread benchmark lost messages")
    report("cross-thread", n: n, wallNanoseconds: elapsed, bytesPerOp: 0)
}

/// A ping-pong between two Swift tasks on the two loops of a `LoopGroup`,
/// through two unbounded channels: each of the `n` hand-offs is a send on one
/// loop that wakes a receiver waiting on the other (through that loop's inbox
/// and `uv_async_send`). Reports the wall time per hand-off.
func benchCrossLoop(n: Int) async throws {
    let group = try LoopGroup(loops: 2, name: "weft-bench")
    defer { group.shutdown() }
    let rounds = max(1, n / 2)
    let (pings, pingReceiver) = unboundedChannel(of: Int.self)
    let (pongs, pongReceiver) = unboundedChannel(of: Int.self)
    let ponger = group.loops[1].spawn {
        while let value = try await pingReceiver.receive() { try? pongs.send(value) }
    }
    let wallNanoseconds = try await group.loops[0].spawn { () async throws -> Double in
        let start = ContinuousClock.now
        for round in 0..<rounds {
            try? pings.send(round)
            guard try await pongReceiver.receive() == round else { fatalError("cross-loop benchmark lost a message") }
        }
        return nanosecondsSince(start)
    }.value
    ponger.cancel()
    report("cross-loop", n: 2 * rounds, wallNanoseconds: wallNanoseconds, bytesPerOp: 0)
}
