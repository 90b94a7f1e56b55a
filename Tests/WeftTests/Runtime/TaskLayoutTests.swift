@testable import Weft
import Testing

/// A task is one allocation: its state, fields, then its future and output slot
/// (`TaskSlots`) in a tail sized to them. These check the arithmetic for
/// payloads of every size and alignment, and that the payload survives the
/// task's polls intact (ASan, in `.ci/run`, checks that no access leaves the
/// allocation).
@Suite("A task's one allocation")
struct TaskLayoutTests {
    /// Holds `payload` over `yields` polls, then returns it.
    struct Holding<Payload>: Future {
        var payload: Payload
        var yields = 3

        mutating func poll(_ context: inout Context) -> Poll<Payload> {
            guard yields == 0 else {
                yields -= 1
                context.waker.wake()
                return .pending
            }
            return .ready(payload)
        }
    }

    /// Spawns a task holding `payload`, checks where its slots lie, and returns
    /// what the task returned.
    func spawnHolding<Payload>(_ payload: Payload, on runtime: Runtime,
                               sourceLocation: SourceLocation = #_sourceLocation) throws -> Payload {
        typealias Slots = TaskSlots<Holding<Payload>>
        let handle = runtime.spawn(Holding(payload: payload))
        let object = UnsafeRawPointer(Unmanaged.passUnretained(handle.task).toOpaque())
        let slots = UnsafeRawPointer(Slots.in(handle.task))
        let fieldsEnd = UnsafeRawPointer(RawTask.tail(of: handle.task) + RawTask.payloadOffset)
        #expect(Int(bitPattern: slots) % MemoryLayout<Slots>.alignment == 0, sourceLocation: sourceLocation)
        #expect(slots >= fieldsEnd, sourceLocation: sourceLocation)
        // The object's header (16 bytes), then the tail that `make` asked for.
        #expect(slots + MemoryLayout<Slots>.size <= object + 16 + 8 * Slots.tailWords, sourceLocation: sourceLocation)
        return try runtime.block(on: handle).get()
    }

    @Test("payloads of 1 byte to 4 KiB, aligned to 1, 8 or 16 bytes, lie inside the task's allocation and come back intact")
    func payloadsOfEverySize() throws {
        let runtime = try Runtime()
        #expect(try spawnHolding(UInt8(0xA5), on: runtime) == 0xA5)
        #expect(try spawnHolding(UInt64.max - 1, on: runtime) == UInt64.max - 1)
        let wide: UInt128 = (UInt128(0x0123_4567_89AB_CDEF) << 64) | 0xFEDC_BA98_7654_3210
        #expect(MemoryLayout<UInt128>.alignment == 16)
        #expect(try spawnHolding(wide, on: runtime) == wide)
        #expect(try spawnHolding((UInt8(1), wide), on: runtime) == (1, wide))
        #expect(try spawnHolding("a string long enough to live on the heap", on: runtime)
                == "a string long enough to live on the heap")
        var large = InlineArray<512, UInt64>(repeating: 0)
        for index in large.indices { large[index] = UInt64(index) &* 0x9E37_79B9_7F4A_7C15 }
        let returned = try spawnHolding(large, on: runtime)
        #expect(returned.indices.allSatisfy { returned[$0] == large[$0] })
        #expect(runtime.statistics.tasksAlive == 0)
    }

    @Test("a task whose future is dropped unfinished releases what the future held")
    func abortedPayloadIsReleased() throws {
        final class Tracked: Sendable {}
        weak var watched: Tracked?
        let runtime = try Runtime()
        do {
            let payload = Tracked()
            watched = payload
            let handle = runtime.spawn(Holding(payload: payload, yields: .max))
            try runtime.block(on: yieldNow())
            handle.abort()
            #expect(throws: JoinError.self) { try runtime.block(on: handle).get() }
        }
        #expect(watched == nil)
    }
}
