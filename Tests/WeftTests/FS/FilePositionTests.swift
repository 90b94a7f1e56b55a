import Glibc
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

    @Test("a runtime dropped while a file read waits in the thread pool (a FIFO with no data) is freed, and the closed file's descriptor closed, once the read ends (the read's request held the file and the file the loop, which nothing ran again: the runtime leaked with its buffers and the descriptor)")
    func runtimeDroppedWithAReadInFlight() throws {
        try FileTest.withTemporaryDirectory { directory in
            let path = directory + "/fifo"
            try #require(mkfifo(path, 0o600) == 0)
            let writer = open(path, O_RDWR)  // a writer, so the read waits for data instead of ending
            try #require(writer >= 0)
            defer { close(writer) }
            var fifo = stat()
            try #require(fstat(writer, &fifo) == 0)
            // Whether `descriptor` is still open on the FIFO (a closed number may
            // be reused at once by another test's file).
            func isOpenOnTheFIFO(_ descriptor: Int32) -> Bool {
                var status = stat()
                return fstat(descriptor, &status) == 0 && status.st_ino == fifo.st_ino && status.st_dev == fifo.st_dev
            }
            weak var loop: EventLoop?
            var descriptor: Int32 = -1
            do {
                let runtime = try Runtime()
                loop = runtime.loop
                let file = try runtime.block(on: File.openFuture(path)).get()
                descriptor = file.descriptor
                var read = file.readFuture(upTo: 16)
                let waited = try runtime.block(on: pollFn { context in .ready(!read.poll(&context).isReady) })
                #expect(waited, "the read waits in the thread pool")
                file.close()  // closes the descriptor once the read ended
            }  // the runtime, the file and the read go: the read still waits in the pool
            // (Unless the pool was busy with other tests' work and the read had
            // not started: then the shutdown cancelled it, and all ended at once.)
            #expect(write(writer, "x", 1) == 1)
            let deadline = ContinuousClock.now + .seconds(10)
            while (loop != nil || isOpenOnTheFIFO(descriptor)) && ContinuousClock.now < deadline { usleep(1_000) }
            #expect(loop == nil, "the runtime's loop was never freed")
            #expect(!isOpenOnTheFIFO(descriptor), "the file's descriptor was never closed")
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
