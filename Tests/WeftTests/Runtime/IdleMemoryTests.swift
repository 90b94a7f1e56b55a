@testable import Weft
import Testing

/// What a loop hands back when it goes idle after a burst (`HeapTrim`): the
/// attachments that keep memory (`LoopMemoryHolder`) are told first, and the
/// read buffers' cached pages go back to the OS.
@Suite("Memory a loop hands back when idle")
struct IdleMemoryTests {
    /// Counts the loop's idle releases.
    final class ReleaseCounter: LoopMemoryHolder {
        static let key = LoopAttachmentKey { _ in ReleaseCounter() }
        var releases = 0
        func releaseIdleMemory() { releases += 1 }
    }

    @Test("after a burst of 128 spawned tasks, the loop tells its memory-holding attachments before it blocks")
    func burstThenIdleReleases() throws {
        let runtime = try Runtime()
        let releasesBefore = runtime.loop.withAttachment(ReleaseCounter.key) { $0.releases }
        try runtime.block(on: ready(()).then { _ in
            joinAll((0..<128).map { _ in spawn(ready(())) })
        }.then { _ in sleepFuture(for: .milliseconds(250)) })  // idle: the loop blocks
        let releasesAfter = runtime.loop.withAttachment(ReleaseCounter.key) { $0.releases }
        #expect(releasesAfter > releasesBefore)
    }

    @Test("the read buffers' idle release drops their pages: a cached buffer reads as zeros after it, and is still usable")
    func readBufferPagesAreDropped() throws {
        let runtime = try Runtime()
        let size = ReadBufferPool.bufferSize
        runtime.loop.withReadBuffers { pool in
            let buffer = pool.take()
            #expect(Int(bitPattern: buffer) % 4096 == 0)
            buffer.initializeMemory(as: UInt8.self, repeating: 0xA5, count: size)
            pool.give(buffer)
            pool.releaseIdleMemory()
            let again = pool.take()
            #expect(again == buffer)
            let bytes = UnsafeRawBufferPointer(start: again, count: size)
            #expect(bytes.allSatisfy { $0 == 0 })
            again.storeBytes(of: 7, as: UInt8.self)
            #expect(again.load(as: UInt8.self) == 7)
            pool.give(again)
        }
    }
}
