@testable import Weft
import Testing

/// `StreamConnection.Chunks`, the unread bytes of a stream: the first chunk
/// inline, the rest in an array only while there are more.
@Suite("Stream chunks")
struct StreamChunksTests {
    typealias Chunk = StreamConnection.Chunk

    /// Four distinct buffer addresses (never read or written).
    let buffers = (0..<4).map { _ in UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16) }

    func chunk(_ index: Int, _ start: Int, _ end: Int) -> Chunk {
        Chunk(base: buffers[index], start: start, end: end)
    }

    func describe(_ chunk: Chunk?) -> [Int]? {
        chunk.map { [buffers.firstIndex(of: $0.base)!, $0.start, $0.end] }
    }

    /// Empties `chunks`, returning each chunk as [buffer, start, end].
    func drain(_ chunks: inout StreamConnection.Chunks) -> [[Int]] {
        var drained: [[Int]] = []
        chunks.removeAll { drained.append(describe($0)!) }
        return drained
    }

    @Test("chunks come out oldest first; the last one grows; the first one advances; a prepended chunk comes out first")
    func order() {
        defer { buffers.forEach { $0.deallocate() } }
        var chunks = StreamConnection.Chunks()
        #expect(chunks.isEmpty && chunks.first == nil && chunks.last == nil)
        chunks.append(chunk(0, 0, 10))
        #expect(describe(chunks.first) == [0, 0, 10] && describe(chunks.last) == [0, 0, 10])
        chunks.extendLast(by: 5)
        chunks.append(chunk(1, 0, 7))
        chunks.extendLast(by: 3)
        #expect(describe(chunks.first) == [0, 0, 15] && describe(chunks.last) == [1, 0, 10])
        chunks.advanceFirst(by: 4)
        chunks.prepend(chunk(2, 0, 2))
        chunks.append(chunk(3, 1, 2))
        #expect(describe(chunks.removeFirst()) == [2, 0, 2])
        #expect(describe(chunks.removeFirst()) == [0, 4, 15])
        #expect(describe(chunks.first) == [1, 0, 10] && describe(chunks.last) == [3, 1, 2])
        #expect(drain(&chunks) == [[1, 0, 10], [3, 1, 2]])
        #expect(chunks.isEmpty && chunks.last == nil)
    }

    @Test("removing the only chunk or the last of several leaves the queue empty, and it fills again in order")
    func emptiesAndRefills() {
        defer { buffers.forEach { $0.deallocate() } }
        var chunks = StreamConnection.Chunks()
        chunks.append(chunk(0, 0, 1))
        #expect(describe(chunks.removeFirst()) == [0, 0, 1])
        #expect(chunks.isEmpty)
        chunks.prepend(chunk(1, 0, 2))
        chunks.append(chunk(2, 0, 3))
        #expect(describe(chunks.removeFirst()) == [1, 0, 2])
        #expect(describe(chunks.removeFirst()) == [2, 0, 3])
        #expect(chunks.isEmpty && chunks.first == nil)
        chunks.append(chunk(3, 0, 4))
        chunks.extendLast(by: 1)
        #expect(drain(&chunks) == [[3, 0, 5]])
    }
}
