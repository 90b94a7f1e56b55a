import Foundation
import Testing
import Weft

/// Copies from file to file whose chunk, on the pool, outlives the copy or
/// is shared with the files' other operations (``FileCopy``: the chunk is
/// each file's transfer in flight until it ends).
@Suite("Files: copies and their chunks")
struct FileCopyTests {
    /// Whether `descriptor` is open on `path` (a number closed and reused by
    /// another test names another file).
    static func isOpen(_ descriptor: Int32, on path: String) -> Bool {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)")) == path
    }

    @Test("two files copied one into the other and never closed are freed once dropped, their descriptors closed (the chunk's completion held both files, and each file the chunk: neither was ever freed)")
    func copiedFilesAreFreed() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let bytes = FileTest.pattern(300_000)
            try runtime.block(on: FileSystem.writeFileFuture(directory + "/source", contents: bytes)).get()
            weak var weakSource: File?
            weak var weakCopy: File?
            var descriptors: (source: Int32, copy: Int32) = (-1, -1)
            do {
                let source = try runtime.block(on: File.openFuture(directory + "/source")).get()
                let copied = try runtime.block(on: File.openFuture(directory + "/copy", options: [.write, .create])).get()
                (weakSource, weakCopy) = (source, copied)
                descriptors = (source.descriptor, copied.descriptor)
                #expect(try runtime.block(on: copy(from: source, to: copied)).get() == bytes.count)
            }
            // Runs the loop until the dropped files' closes are done.
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
            #expect(weakSource == nil, "the source was never freed")
            #expect(weakCopy == nil, "the destination was never freed")
            #expect(!Self.isOpen(descriptors.source, on: directory + "/source"), "the source's descriptor is still open")
            #expect(!Self.isOpen(descriptors.copy, on: directory + "/copy"), "the destination's descriptor is still open")
            #expect(try runtime.block(on: FileSystem.readFileFuture(directory + "/copy")).get() == bytes)
        }
    }
}
