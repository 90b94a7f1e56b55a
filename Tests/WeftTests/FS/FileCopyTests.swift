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

    /// A thread reading the read end of a pipe to its end, then closing it.
    static func drain(_ descriptor: Int32, into bytes: SharedBox<[UInt8]>) -> ForeignThread {
        ForeignThread {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                bytes.set(bytes.get() + buffer[..<count])
            }
            Glibc.close(descriptor)
        }
    }

    @Test("a copy whose write fails (past the file-size limit) leaves its reader at the first byte not written: a copy again, with no limit, makes the file whole (block by block it went on after them, and in chunks from an adopted descriptor read() had taken them: both left them out)")
    func copyAgainAfterAFailedWrite() async {
        // In a process of its own: the limit is the process's.
        await #expect(processExitsWith: .success) { try FileCopyTests.copyAgainAfterAFailedWrite(adopted: false) }
        await #expect(processExitsWith: .success) { try FileCopyTests.copyAgainAfterAFailedWrite(adopted: true) }
    }

    /// Copies 1 MiB into a file limited to 300,000 bytes, which fails with
    /// `EFBIG`, then again with no limit; traps unless the copy is whole. Not
    /// `adopted`: the reader read 1,000 bytes first, so it holds blocks read
    /// ahead and copies block by block; `adopted`: a fresh reader at its
    /// descriptor's position, copied in chunks on the pool.
    static func copyAgainAfterAFailedWrite(adopted: Bool) throws {
        signal(SIGXFSZ, SIG_IGN)  // the write past the limit fails instead
        try FileTest.withTemporaryDirectory { directory in
            let runtime = try Runtime()
            let bytes = FileTest.pattern(1 << 20, seed: 12)
            try runtime.block(on: FileSystem.writeFileFuture(directory + "/source", contents: bytes)).get()
            let source: File
            let expected: ArraySlice<UInt8>
            if adopted {
                source = try File(adoptingDescriptor: open(directory + "/source", O_RDONLY), closesDescriptor: true, runtime: runtime)
                expected = bytes[...]
            } else {
                source = try runtime.block(on: File.openFuture(directory + "/source")).get()
                try source.setBufferSize(64 * 1024)
                let first = try runtime.block(on: source.readExact(1000)).get()
                precondition(first == Array(bytes[..<1000]))
                expected = bytes[1000...]
            }
            let destination = try runtime.block(on: File.openFuture(directory + "/copy", options: [.write, .create])).get()
            let resource = Int32(RLIMIT_FSIZE.rawValue)
            var limit = rlimit()
            precondition(getrlimit(resource, &limit) == 0)
            let unlimited = limit.rlim_cur
            limit.rlim_cur = 300_000
            precondition(setrlimit(resource, &limit) == 0)
            let failed = try runtime.block(on: copy(from: source, to: destination))
            precondition(failed.failure?.name == "EFBIG", "\(failed)")
            limit.rlim_cur = unlimited
            precondition(setrlimit(resource, &limit) == 0)
            let again = try runtime.block(on: copy(from: source, to: destination)).get()
            source.close()
            destination.close()
            let copied = try runtime.block(on: FileSystem.readFileFuture(directory + "/copy", limit: 2 << 20)).get()
            // Compared apart: a failed precondition would print 1 MiB arrays.
            precondition(copied.count == expected.count, "\(copied.count) bytes copied of \(expected.count); \(again) the second time")
            precondition(copied.elementsEqual(expected), "the bytes differ")
        }
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

    /// Runs `runtime` until the pipe whose read end is `descriptor` holds
    /// bytes (a copy's chunk has started writing it), at most 10 s.
    static func waitForBytes(in descriptor: Int32, runtime: Runtime) throws {
        let deadline = ContinuousClock.now + .seconds(10)
        var readable = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while poll(&readable, 1, 0) == 0 && ContinuousClock.now < deadline {
            try runtime.block(on: sleepFuture(for: .milliseconds(1)))
        }
        #expect(readable.revents & Int16(POLLIN) != 0, "no chunk wrote to the pipe within 10 s")
    }

    @Test("a copy dropped while its chunk blocks writing a pipe: another task's write waiting behind the chunk finishes once the pipe is drained (the drop forgot its waker: it waited for ever)")
    func droppedCopyWakesTheWriteBehindIt() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let bytes = FileTest.pattern(1 << 20)
            try runtime.block(on: FileSystem.writeFileFuture(directory + "/source", contents: bytes)).get()
            var ends: [Int32] = [-1, -1]
            #expect(closeOnExecPipe(&ends) == 0)
            let source = try runtime.block(on: File.openFuture(directory + "/source")).get()
            let pipeFile = try File(adoptingDescriptor: ends[1], closesDescriptor: true, path: "pipe", runtime: runtime)
            // The chunk fills the pipe (64 KiB) and blocks its pool thread in
            // write(2): waited for until bytes reach the pipe (a fixed 50 ms
            // let a loaded machine abort the chunk before it started).
            let copying = runtime.spawn(copy(from: source, to: pipeFile))
            try Self.waitForBytes(in: ends[0], runtime: runtime)
            let tail = runtime.spawn(pipeFile.writeFuture(Array("tail".utf8)))
            try runtime.block(on: sleepFuture(for: .milliseconds(50)))  // it waits for the chunk
            copying.abort()
            try runtime.block(on: sleepFuture(for: .milliseconds(50)))  // the copy is dropped
            let drained = SharedBox<[UInt8]>([])
            let drainer = Self.drain(ends[0], into: drained)
            let written = try runtime.block(on: timeoutFuture(.seconds(10), tail))
            #expect((try? written.get().get().get()) != nil, "\(written)")
            pipeFile.close()
            source.close()
            try runtime.block(on: sleepFuture(for: .milliseconds(10)))  // the pipe's close ends the drain
            drainer.join()
            let received = drained.get()
            #expect(received.count == bytes.count + 4)
            #expect(received.elementsEqual(bytes + Array("tail".utf8)), "the chunk's bytes, then the write's")
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("a second copy from a file whose first copy's chunk still runs waits for that chunk and copies on from where it stopped (it copied the same bytes again from the old position, and the position advanced by both)")
    func secondCopyWaitsForTheReadersChunk() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let bytes = FileTest.pattern(1 << 20, seed: 5)
            try runtime.block(on: FileSystem.writeFileFuture(directory + "/source", contents: bytes)).get()
            var ends: [Int32] = [-1, -1]
            #expect(closeOnExecPipe(&ends) == 0)
            let source = try runtime.block(on: File.openFuture(directory + "/source")).get()
            let pipeFile = try File(adoptingDescriptor: ends[1], closesDescriptor: true, path: "pipe", runtime: runtime)
            // The first copy's chunk fills the pipe and blocks in write(2);
            // the copy is dropped once bytes reach the pipe, the chunk runs on.
            var first: FileCopy? = copy(from: source, to: pipeFile)
            _ = try runtime.block(on: pollFn { (context: inout Context) -> Poll<Void> in
                _ = first!.poll(&context)  // submits the chunk
                return .ready(())
            })
            try Self.waitForBytes(in: ends[0], runtime: runtime)
            first = nil
            let destination = try runtime.block(on: File.openFuture(directory + "/copy", options: [.write, .create])).get()
            let second = runtime.spawn(copy(from: source, to: destination))
            try runtime.block(on: sleepFuture(for: .milliseconds(50)))
            let drained = SharedBox<[UInt8]>([])
            let drainer = Self.drain(ends[0], into: drained)
            let copied = try runtime.block(on: timeoutFuture(.seconds(10), second))
            pipeFile.close()
            source.close()
            destination.close()
            try runtime.block(on: sleepFuture(for: .milliseconds(10)))  // the pipe's close ends the drain
            drainer.join()
            let intoPipe = drained.get()
            let intoFile = try runtime.block(on: FileSystem.readFileFuture(directory + "/copy")).get()
            #expect((try? copied.get().get().get()) == intoFile.count, "\(copied)")
            // Compared apart: a failed #expect would print MiB-long arrays.
            #expect(intoPipe.count + intoFile.count == bytes.count, "\(intoPipe.count) bytes into the pipe, \(intoFile.count) into the file")
            #expect((intoPipe + intoFile).elementsEqual(bytes), "the first chunk's bytes, then the second copy's, in order")
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    /// What `copy` yields at its first poll, on `runtime`; nil if pending
    /// (then dropped: a chunk it started still runs, 64 MiB at most).
    static func firstPoll(_ copy: FileCopy, on runtime: Runtime) throws -> Result<Int, WeftError>? {
        var copy = copy
        return try runtime.block(on: pollFn { context -> Poll<Result<Int, WeftError>?> in
            guard case .ready(let result) = copy.poll(&context) else { return .ready(nil) }
            return .ready(result)
        })
    }

    @Test("a copy between two files open on one regular file fails at once with invalidArgument: the whole file onto a file appending to it (it copied what it had just written until the disk filled), a range onto where it is read from (copy_file_range refused, and the copy through the buffer read bytes it had overwritten), a range to the end onto a file appending to it; ranges apart are copied")
    func ontoTheSameFile() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let path = directory + "/data"
            let bytes = FileTest.pattern(1 << 20)
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: bytes)).get()
            let source = try runtime.block(on: File.openFuture(path)).get()
            let appending = try runtime.block(on: File.openFuture(path, options: [.write, .append])).get()
            let inside = try runtime.block(on: File.openFuture(path, options: [.read, .write])).get()
            try inside.setBufferSize(4096)
            #expect(try runtime.block(on: inside.readExact(1000)).get() == Array(bytes[..<1000]), "positioned at 1000")
            // Before the fix each was pending at its first poll, a chunk started.
            for (name, refused) in [
                ("the whole file, appended", copy(from: source, to: appending)),
                ("a range, at 1000 in it", source.sendFuture(to: inside, offset: 0, count: bytes.count)),
                ("a range to the end, appended", source.sendFuture(to: appending, offset: 0, count: .max)),
            ] {
                let first = try Self.firstPoll(refused, on: runtime)
                #expect(first?.failure?.code == .invalidArgument, "\(name): \(String(describing: first))")
                #expect(first?.failure?.description.contains("input file is output file") == true, "\(name): \(String(describing: first))")
            }
            #expect(try runtime.block(on: FileSystem.readFileFuture(path, limit: 2 << 20)).get() == bytes, "nothing copied")
            // Apart: the first 1000 bytes appended, then over the 1000 after them.
            #expect(try runtime.block(on: source.sendFuture(to: appending, offset: 0, count: 1000)).get() == 1000)
            #expect(try runtime.block(on: source.sendFuture(to: inside, offset: 0, count: 1000)).get() == 1000)
            // Written before where it reads (at 2000, from 2500), the ranges
            // overlapping over several blocks: the copy forwards stays ahead of
            // its writes, so it is copied.
            #expect(try runtime.block(on: source.sendFuture(to: inside, offset: 2500, count: 300_000)).get() == 300_000)
            for file in [source, appending, inside] { file.close() }
            let expected = Array(bytes[..<1000] + bytes[..<1000] + bytes[2500..<302_500] + bytes[302_000...] + bytes[..<1000])
            #expect(try runtime.block(on: FileSystem.readFileFuture(path, limit: 2 << 20)).get() == expected)
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    // Before the fix that came with this test, a File sent to itself was
    // refused as "a file onto itself" whatever the range, where the same
    // range sent to another File of the same path was copied.
    @Test("a range of a file sent to that same File object is copied where it does not overlap where it is written, and refused where it does, as with two File objects of one path; the whole file onto itself is refused")
    func rangeOntoTheSameFileObject() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let path = directory + "/data"
            let bytes = FileTest.pattern(1 << 16)
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: bytes)).get()
            let file = try runtime.block(on: File.openFuture(path, options: [.read, .write])).get()
            #expect(try runtime.block(on: file.readExact(1000)).get() == Array(bytes[..<1000]), "positioned at 1000")
            // A header copied to where the file is positioned.
            #expect(try runtime.block(on: file.sendFuture(to: file, offset: 0, count: 100)).get() == 100)
            // From 500 to 1500, over where it would be written (1100).
            let overlapping = try runtime.block(on: file.sendFuture(to: file, offset: 500, count: 1000))
            #expect(overlapping.failure?.code == .invalidArgument, "\(overlapping)")
            #expect(overlapping.failure?.description.contains("overlaps where it is written") == true, "\(overlapping)")
            let whole = try runtime.block(on: copy(from: file, to: file))
            #expect(whole.failure?.code == .invalidArgument, "\(whole)")
            file.close()
            let expected = Array(bytes[..<1000] + bytes[..<100] + bytes[1100...])
            #expect(try runtime.block(on: FileSystem.readFileFuture(path, limit: 1 << 20)).get() == expected)
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }
}
