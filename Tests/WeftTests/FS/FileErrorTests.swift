import Foundation
import Testing
import Weft

@Suite("Files: errors")
struct FileErrorTests {
    /// The error `future` fails with, checked to name `path`, the libuv error and the operation.
    static func failure<F: Future>(
        _ runtime: Runtime, _ future: F, naming path: String, libuvName: String, operation: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> WeftError where F.Output == Result<File, WeftError> {
        let error = try #require(throws: WeftError.self, sourceLocation: sourceLocation) {
            try runtime.block(on: future).get()
        }
        #expect(error.name == libuvName, sourceLocation: sourceLocation)
        #expect(error.operation == "\(operation) \(path)", sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix("\(operation) \(path): \(libuvName) ("), "\(error)", sourceLocation: sourceLocation)
        return error
    }

    @Test("a write at an offset to a file opened to append fails with invalidArgument and changes nothing (Linux's pwrite wrote it at the end, and said nothing)")
    func writeAtAnOffsetWhenAppending() throws {
        try FileTest.withTemporaryDirectory { directory in
            let runtime = try Runtime()
            let path = directory + "/log"
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: Array("0123456789".utf8))).get()
            let file = try runtime.block(on: File.openFuture(path, options: [.read, .write, .append])).get()
            defer { file.close() }
            let error = try #require(throws: WeftError.self) { try runtime.block(on: file.writeFuture(Array("XY".utf8), at: 2)).get() }
            #expect(error.kind == .invalidArgument)
            #expect(error.operation == "write \(path)")
            #expect(try runtime.block(on: FileSystem.readFileFuture(path)).get() == Array("0123456789".utf8))
            // Appending itself still works.
            try runtime.block(on: file.writeAll(Array("XY".utf8))).get()
            #expect(try runtime.block(on: FileSystem.readFileFuture(path)).get() == Array("0123456789XY".utf8))
        }
    }

    @Test("opening a missing file fails with notFound, naming the path: open /…/missing: ENOENT (no such file or directory)")
    func notFound() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let path = directory + "/missing"
            let error = try Self.failure(runtime, File.openFuture(path), naming: path, libuvName: "ENOENT", operation: "open")
            #expect(error.code == .notFound)
            #expect(error.description == "open \(path): ENOENT (no such file or directory)")
            let stat = try #require(throws: WeftError.self) { try runtime.block(on: FileSystem.statusFuture(of: path)).get() }
            #expect(stat.code == .notFound)
            #expect(stat.description.contains(path))
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("opening for writing what even root may not write fails with permissionDenied, naming the path")
    func permissionDenied() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        // A read-only sysctl (mode 0444): procfs checks its mode for root too,
        // where a file's permission bits would not stop root.
        let path = "/proc/sys/kernel/osrelease"
        let error = try Self.failure(runtime, File.openFuture(path, options: [.write]), naming: path, libuvName: "EACCES", operation: "open")
        #expect(error.code == .permissionDenied)
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("opening a file whose permission bits deny the reader fails with permissionDenied",
          .enabled(if: geteuid() != 0, "runs as root, whom permission bits do not deny (the /proc/sys case covers root)"))
    func permissionBitsDeny() throws {
        try FileTest.withTemporaryDirectory { directory in
            let runtime = try Runtime()
            let path = directory + "/secret"
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: [1], permissions: [])).get()
            let error = try Self.failure(runtime, File.openFuture(path), naming: path, libuvName: "EACCES", operation: "open")
            #expect(error.code == .permissionDenied)
        }
    }

    @Test("opening a directory for writing fails with isDirectory; reading one opened for reading fails likewise")
    func isDirectory() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let error = try Self.failure(runtime, File.openFuture(directory, options: [.write]), naming: directory,
                                         libuvName: "EISDIR", operation: "open")
            #expect(error.code == .isDirectory)
            let read = try #require(throws: WeftError.self) { try runtime.block(on: FileSystem.readFileFuture(directory)).get() }
            #expect(read.code == .isDirectory)
            #expect(read.description.hasPrefix("read \(directory): EISDIR"))
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("a path through a regular file fails with notDirectory, naming the path")
    func notDirectory() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            try runtime.block(on: FileSystem.writeFileFuture(directory + "/plain", contents: [1])).get()
            let path = directory + "/plain/child"
            let error = try Self.failure(runtime, File.openFuture(path, options: [.write, .create]), naming: path,
                                         libuvName: "ENOTDIR", operation: "open")
            #expect(error.code == .notDirectory)
            let listing = try #require(throws: WeftError.self) {
                try runtime.block(on: FileSystem.contentsOfDirectoryFuture(directory + "/plain")).get()
            }
            #expect(listing.code == .notDirectory)
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("a path holding a NUL character fails with invalidArgument before reaching C")
    func nulInPath() throws {
        let runtime = try Runtime()
        let error = try #require(throws: WeftError.self) { try runtime.block(on: File.openFuture("/tmp/a\0b")).get() }
        #expect(error.code == .invalidArgument)
        let removal = try #require(throws: WeftError.self) { try runtime.block(on: FileSystem.removeFileFuture("/tmp/a\0b")).get() }
        #expect(removal.code == .invalidArgument)
    }

    @Test("a positional read of up to Int.max bytes reads what there is (it trapped allocating Int.max bytes); a sendfile of a negative count or offset fails with EINVAL (size_t read -1 as 2^64 - 1)")
    func extremeLengths() throws {
        try FileTest.withTemporaryDirectory { directory in
            let runtime = try Runtime()
            let path = directory + "/small"
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: [1, 2, 3])).get()
            let file = try runtime.block(on: File.openFuture(path)).get()
            #expect(try runtime.block(on: file.readFuture(upTo: .max, at: 0)).get() == [1, 2, 3])
            #expect(try runtime.block(on: file.readFuture(upTo: 5 << 30, at: 1)).get() == [2, 3])
            let copy = try runtime.block(on: File.openFuture(directory + "/copy", options: [.write, .create])).get()
            for (offset, count) in [(0, -1), (-1, 3)] as [(Int64, Int)] {
                let error = try #require(throws: WeftError.self) {
                    try runtime.block(on: file.sendFuture(to: copy, offset: offset, count: count)).get()
                }
                #expect(error.name == "EINVAL", "\(offset), \(count): \(error)")
            }
            file.close()
            copy.close()
        }
    }

    @Test("a ranged copy into a file the kernel refuses to write (a memfd sealed against writes: copy_file_range's EPERM) fails naming the write of the destination, not the read of the source")
    func copyIntoASealedFile() throws {
        // glibc's memfd_create, which Swift's Glibc module does not declare.
        typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
        let memfdCreate = unsafeBitCast(try #require(dlsym(nil, "memfd_create")), to: MemfdCreate.self)
        let source = memfdCreate("weft-source", 0)
        let sealed = memfdCreate("weft-sealed", 2)  // MFD_ALLOW_SEALING
        try #require(source >= 0 && sealed >= 0)
        defer { Glibc.close(source); Glibc.close(sealed) }
        #expect(Glibc.write(source, "sealed away", 11) == 11)
        try #require(fcntl(sealed, 1033, 0x0008) == 0)  // F_ADD_SEALS, F_SEAL_WRITE (not in Glibc's module)
        let runtime = try Runtime()
        let reader = try runtime.block(on: File.openFuture("/proc/self/fd/\(source)")).get()
        let writer = try runtime.block(on: File.openFuture("/proc/self/fd/\(sealed)", options: [.write])).get()
        let error = try #require(throws: WeftError.self) {
            try runtime.block(on: reader.sendFuture(to: writer, offset: 0, count: 11)).get()
        }
        #expect(error.name == "EPERM", "\(error)")
        #expect(error.operation == "write /proc/self/fd/\(sealed)", "\(error)")
        reader.close()
        writer.close()
    }

    @Test("truncate without write access fails with invalidArgument and leaves the file whole (Linux empties a file opened read-only with O_TRUNC)")
    func truncateWithoutWrite() throws {
        try FileTest.withTemporaryDirectory { directory in
            let runtime = try Runtime()
            let path = directory + "/precious"
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: Array("precious".utf8))).get()
            for options: FileOpenOptions in [[.read, .truncate], [.truncate]] {
                let error = try #require(throws: WeftError.self) { try runtime.block(on: File.openFuture(path, options: options)).get() }
                #expect(error.code == .invalidArgument, "\(options): \(error)")
                #expect(error.description.contains("truncate needs write access"), "\(error)")
            }
            #expect(try runtime.block(on: FileSystem.readFileFuture(path)).get() == Array("precious".utf8))
            let emptied = try runtime.block(on: File.openFuture(path, options: [.write, .truncate])).get()
            emptied.close()
            #expect(try runtime.block(on: FileSystem.readFileFuture(path)).get() == [])
        }
    }

    @Test("exclusive without create fails with invalidArgument and opens nothing (Linux ignores O_EXCL without O_CREAT: the existing file was opened and written)")
    func exclusiveWithoutCreate() throws {
        try FileTest.withTemporaryDirectory { directory in
            let runtime = try Runtime()
            let path = directory + "/existing"
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: [1])).get()
            let error = try #require(throws: WeftError.self) { try runtime.block(on: File.openFuture(path, options: [.write, .exclusive])).get() }
            #expect(error.code == .invalidArgument, "\(error)")
            #expect(error.description.contains("exclusive needs create"), "\(error)")
            let created = try #require(throws: WeftError.self) { try runtime.block(on: File.openFuture(path, options: [.write, .create, .exclusive])).get() }
            #expect(created.code == .alreadyExists, "\(created)")
        }
    }

    @Test("a write to a file opened only to read fails with invalidArgument saying so, not .closed (EBADF, which means a closed handle elsewhere), and the file still reads; a path operation off any runtime names its path")
    func writeToAFileOpenedToRead() throws {
        try FileTest.withTemporaryDirectory { directory in
            let runtime = try Runtime()
            let path = directory + "/read-only"
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: [1, 2])).get()
            let file = try runtime.block(on: File.openFuture(path)).get()
            for failed in [try runtime.block(on: file.writeAll([9])), try runtime.block(on: file.writeFuture([9], at: 0)).map { _ in }] {
                let error = try #require(failed.failure)
                #expect(error.code == .invalidArgument, "\(error)")
                #expect(error.description.contains("EBADF") && error.description.contains(".write"), "\(error)")
            }
            let truncated = try #require(try runtime.block(on: file.truncateFuture(to: 0)).failure)
            #expect(truncated.code == .invalidArgument, "\(truncated)")
            #expect(try runtime.block(on: file.readFuture(upTo: 2, at: 0)).get() == [1, 2])
            file.close()
        }
        var offRuntime = FileSystem.statusFuture(of: "/nowhere/at-all")
        var context = Context(waker: .noop)
        guard case .ready(.failure(let error)) = offRuntime.poll(&context) else {
            Issue.record("a path operation off any runtime did not fail")
            return
        }
        #expect(error.operation.contains("/nowhere/at-all"), "\(error)")
    }

    @Test("an open polled again after it completed fails with invalidArgument, as readFile's and writeFile's do (it made a second File owning the same descriptor: closing either closed the other's)")
    func openPolledAfterItCompleted() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let path = directory + "/opened"
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: [1, 2, 3])).get()
            let open = Box(File.openFuture(path))
            let file = try runtime.block(on: pollFn { open.value.poll(&$0) }).get()
            let again = try runtime.block(on: pollFn { open.value.poll(&$0) })
            let error = try #require(again.failure, "a second File: \(again)")
            #expect(error.code == .invalidArgument, "\(error)")
            #expect(error.description.contains("polled after it completed"), "\(error)")
            #expect(try runtime.block(on: file.readFuture(upTo: 10, at: 0)).get() == [1, 2, 3])
            file.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("a copy of an open made after its first poll, polled after the other copy completed, fails with invalidArgument (the copies share the open in flight: it made a second File owning the same descriptor)")
    func openCopiedWhilePending() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let path = directory + "/opened"
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: [1, 2, 3])).get()
            let open = Box(File.openFuture(path))
            let first = try runtime.block(on: pollFn { context in .ready(open.value.poll(&context)) })
            guard case .pending = first else {
                Issue.record("the open was not pending at its first poll: \(first)")
                return
            }
            let copy = Box(open.value)
            let file = try runtime.block(on: pollFn { open.value.poll(&$0) }).get()
            let again = try runtime.block(on: pollFn { copy.value.poll(&$0) })
            let error = try #require(again.failure, "a second File: \(again)")
            #expect(error.code == .invalidArgument, "\(error)")
            #expect(error.description.hasPrefix("open \(path): "), "\(error)")
            #expect(try runtime.block(on: file.readFuture(upTo: 10, at: 0)).get() == [1, 2, 3])
            file.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }

    @Test("after close() every operation fails with closed: a sequential read of a block already read ahead, a sequential read of nothing, a read into an empty buffer and a positional write of nothing, a send or copy of nothing from or to it (each succeeded)")
    func everythingFailsAfterClose() throws {
        try FileTest.withTemporaryDirectory { directory in
            let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
            let path = directory + "/closed"
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: Array("hello world".utf8))).get()
            let file = try runtime.block(on: File.openFuture(path, options: [.read, .write])).get()
            #expect(try runtime.block(on: file.readFuture(upTo: 5)).get() == Array("hello".utf8))  // " world" is buffered
            file.close()
            let buffered = try runtime.block(on: file.readFuture(upTo: 6))
            #expect(buffered.failure?.kind == .closed, "\(buffered)")
            let nothing = try runtime.block(on: file.readFuture(upTo: 0))
            #expect(nothing.failure?.kind == .closed, "\(nothing)")
            let intoEmpty = try runtime.block(on: pollFn { context in file.pollRead(&context, into: UnsafeMutableRawBufferPointer(start: nil, count: 0)) })
            #expect(intoEmpty.failure?.kind == .closed, "\(intoEmpty)")
            let writeNothing = try runtime.block(on: file.writeFuture([], at: 0))
            #expect(writeNothing.failure?.kind == .closed, "\(writeNothing)")
            // Sending or copying nothing still says so (they succeeded, with 0).
            let other = try runtime.block(on: File.openFuture(directory + "/other", options: [.read, .write, .create])).get()
            let copyFrom = try runtime.block(on: file.sendFuture(to: other, count: 0))
            #expect(copyFrom.failure?.kind == .closed, "\(copyFrom)")
            let copyTo = try runtime.block(on: other.sendFuture(to: file, count: 0))
            #expect(copyTo.failure?.kind == .closed, "\(copyTo)")
            other.close()
            let (source, listener, server, client) = try FileSendTests.fileAndConnection([1], in: directory, on: runtime)
            source.close()
            let sendNothing = try runtime.block(on: timeoutFuture(.seconds(10), source.sendFuture(to: server, count: 0))).get()
            #expect(sendNothing.failure?.kind == .closed, "\(sendNothing)")
            for stream in [server, client] { stream.close() }
            listener.close()
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        }
    }
}

/// Reads that wait on a file's read ahead, which the file shares between its
/// readers: a close or a write that drops it wakes them.
@Suite("Files: reads waiting on the read ahead")
struct FileReadAheadWaitTests {
    @Test("a read waiting on a pipe's read ahead when the file is closed fails with .closed once that read ends (it waited for ever)")
    func closeWakesAWaitingRead() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var descriptors: [Int32] = [-1, -1]
        #expect(closeOnExecPipe(&descriptors) == 0)
        defer { Glibc.close(descriptors[1]) }
        let file = try File(adoptingDescriptor: descriptors[0], closesDescriptor: true, runtime: runtime)
        let reader = runtime.spawn(file.readFuture(upTo: 10))
        try runtime.block(on: sleepFuture(for: .milliseconds(50)))  // a pool thread waits in read(2)
        file.close()
        #expect(Glibc.write(descriptors[1], "x", 1) == 1)  // that read ends
        let outcome = try runtime.block(on: timeoutFuture(.seconds(10), reader))
        let error = try #require(try outcome.get().get().failure, "\(outcome)")
        #expect(error.kind == .closed, "\(error)")
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a read waiting on a file's read ahead is woken when another task's write drops it")
    func writeWakesAWaitingRead() throws {
        try FileTest.withTemporaryDirectory { directory in
            let runtime = try Runtime()
            let path = directory + "/shared"
            try runtime.block(on: FileSystem.writeFileFuture(path, contents: Array("hello world".utf8))).get()
            let file = try runtime.block(on: File.openFuture(path, options: [.read, .write])).get()
            let wakes = AtomicCounter()
            let accepted = try runtime.block(on: pollFn { (context: inout Context) -> Poll<Result<Int, WeftError>> in
                var read = file.readFuture(upTo: 100)
                var readContext = Context(waker: Waker { wakes.increment() })
                guard case .pending = read.poll(&readContext) else {
                    return .ready(.failure(WeftError(.invalidArgument, operation: "the read was not pending")))
                }
                // The write drops the read ahead (it goes where the reader is).
                return Array("HELLO".utf8).withUnsafeBytes { file.pollWrite(&context, $0) }
            })
            #expect((try? accepted.get()) == 5, "\(accepted)")
            try runtime.block(on: sleepFuture(for: .milliseconds(100)))
            #expect(wakes.value >= 1, "the waiting read was forgotten")
            try runtime.block(on: file.flushFuture()).get()
            file.close()
        }
    }
}
