import Foundation
import Testing
import Weft

extension TimingSensitive {
    @Suite("Channels across threads")
    struct SyncCrossThreadChannelTests {
        @Test("4 foreign threads × 100,000 messages into a bounded channel lose and duplicate nothing")
        func fourProducers() throws {
            let producers = 4
            let perProducer = 100_000
            let runtime = try Runtime()
            let (sender, receiver) = boundedChannel(of: UInt64.self, capacity: 64)
            let failures = AtomicCounter()
            let threads = (0..<producers).map { producer in
                let mine = sender.clone()
                return ForeignThread {
                    // Each producer runs a runtime of its own, so a full channel
                    // parks it and the consumer's wake crosses threads back.
                    do {
                        let local = try Runtime()
                        let values = (0..<perProducer).map { UInt64(producer) << 32 | UInt64($0) }
                        let sent = try local.block(on: SendAll(mine, values))
                        if sent != perProducer { failures.increment() }
                    } catch {
                        failures.increment()
                    }
                }
            }
            _ = consume sender
            var counts = Array(repeating: 0, count: producers)
            var sums = Array(repeating: 0, count: producers)
            var lastSeen = Array(repeating: -1, count: producers)
            var outOfOrder = 0
            let total = try runtime.guardedBlock(on: collectAll(receiver).map { values -> Int in
                for value in values {
                    let producer = Int(value >> 32)
                    let sequence = Int(value & 0xFFFF_FFFF)
                    counts[producer] += 1
                    sums[producer] += sequence
                    if sequence <= lastSeen[producer] { outOfOrder += 1 }
                    lastSeen[producer] = sequence
                }
                return values.count
            }, patience: 20)
            for thread in threads { thread.join() }
            #expect(failures.value == 0)
            #expect(total == producers * perProducer)
            #expect(counts == Array(repeating: perProducer, count: producers))
            #expect(sums == Array(repeating: perProducer * (perProducer - 1) / 2, count: producers))
            #expect(outOfOrder == 0)
        }

        @Test("plain foreign threads sending into an unbounded channel wake the loop")
        func unboundedFromPlainThreads() throws {
            let runtime = try Runtime()
            let (sender, receiver) = unboundedChannel(of: Int.self)
            let threads = (0..<2).map { producer in
                let mine = sender.clone()
                return ForeignThread {
                    for value in 0..<10_000 { try? mine.send(producer * 10_000 + value) }
                }
            }
            _ = consume sender
            let received = try runtime.guardedBlock(on: collectAll(receiver))
            for thread in threads { thread.join() }
            #expect(received.count == 20_000)
            #expect(Set(received).count == 20_000)
        }
    }
}
