import Testing
@testable import Weft

/// Which files keep a position of their own (and read ahead at offsets, two
/// reads in flight) and which are read at the descriptor's position, one
/// request at a time.
@Suite("Files: whose position")
struct FilePositionTests {
    @Test("a regular file keeps its own position; a character device that accepts lseek (/dev/urandom) is read at the descriptor's, one read at a time (a stream-like device such as /dev/hidraw* had two reads ahead take its reports in either order, and lost one)")
    func characterDevicesUseTheDescriptorsPosition() throws {
        try FileTest.withTemporaryDirectory { directory in
            let runtime = try Runtime()
            try runtime.block(on: FileSystem.writeFileFuture(directory + "/regular", contents: [1, 2, 3])).get()
            let regular = try runtime.block(on: File.openFuture(directory + "/regular")).get()
            #expect(regular.hasOwnPosition)
            let device = try runtime.block(on: File.openFuture("/dev/urandom")).get()
            #expect(!device.hasOwnPosition)
            let bytes = try runtime.block(on: device.readFuture(upTo: 16)).get()
            #expect(bytes.count == 16)
            #expect(device.sequential.readsInFlight.count <= 1, "a read ahead at an offset was started")
            for file in [regular, device] { file.close() }
        }
    }

    // Before the fix that came with this test, `consume(-3)` moved the read
    // position back before the buffer: the next read copied a byte from
    // before its allocation, and the position went negative.
    @Test("consume of a count of 0 or less consumes nothing: the next read goes on where the last ended")
    func consumeOfNothing() throws {
        try FileTest.withTemporaryDirectory { directory in
            let runtime = try Runtime()
            try runtime.block(on: FileSystem.writeFileFuture(directory + "/f", contents: Array("hello".utf8))).get()
            let file = try runtime.block(on: File.openFuture(directory + "/f")).get()
            #expect(try runtime.block(on: file.readFuture(upTo: 2)).get() == Array("he".utf8))
            file.consume(-3)
            file.consume(0)
            #expect(try runtime.block(on: file.readFuture(upTo: 10)).get() == Array("llo".utf8))
            #expect(try runtime.block(on: file.readFuture(upTo: 10)).get() == [])
            file.close()
        }
    }
}
