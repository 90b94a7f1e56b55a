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
}
