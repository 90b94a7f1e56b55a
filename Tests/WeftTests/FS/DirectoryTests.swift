import Foundation
import Testing
import Weft

@Suite("Files: directories and paths")
struct DirectoryTests {
    @Test("a directory listing names each entry once, sorted, with its kind; rename, remove and rmdir change it")
    func listing() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let directory = try runtime.block(on: FileSystem.makeTemporaryDirectoryFuture(prefix: "/tmp/weft-fs-listing-")).get()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(directory.hasPrefix("/tmp/weft-fs-listing-"))
        #expect(directory.count == "/tmp/weft-fs-listing-".count + 6)
        #expect(try runtime.block(on: FileSystem.statusFuture(of: directory)).get().kind == .directory)

        try runtime.block(on: FileSystem.writeFileFuture(directory + "/b.txt", contents: Array("bee".utf8))).get()
        try runtime.block(on: FileSystem.writeFileFuture(directory + "/a.txt", contents: Array("a".utf8))).get()
        try runtime.block(on: FileSystem.makeDirectoryFuture(directory + "/sub")).get()
        let existing = try #require(throws: WeftError.self) {
            try runtime.block(on: FileSystem.makeDirectoryFuture(directory + "/sub")).get()
        }
        #expect(existing.code == .alreadyExists)

        let entries = try runtime.block(on: FileSystem.contentsOfDirectoryFuture(directory)).get()
        #expect(entries == [DirectoryEntry(name: "a.txt", kind: .regular), DirectoryEntry(name: "b.txt", kind: .regular),
                            DirectoryEntry(name: "sub", kind: .directory)].sorted { $0.name < $1.name })
        let status = try runtime.block(on: FileSystem.statusFuture(of: directory + "/b.txt")).get()
        #expect(status.size == 3)
        #expect(status.kind == .regular)

        try runtime.block(on: FileSystem.renameFuture(from: directory + "/b.txt", to: directory + "/sub/c.txt")).get()
        let notEmpty = try #require(throws: WeftError.self) {
            try runtime.block(on: FileSystem.removeDirectoryFuture(directory + "/sub")).get()
        }
        #expect(notEmpty.code == .directoryNotEmpty)
        #expect(try runtime.block(on: FileSystem.contentsOfDirectoryFuture(directory + "/sub")).get().map(\.name) == ["c.txt"])
        try runtime.block(on: FileSystem.removeFileFuture(directory + "/sub/c.txt")).get()
        try runtime.block(on: FileSystem.removeDirectoryFuture(directory + "/sub")).get()
        try runtime.block(on: FileSystem.removeFileFuture(directory + "/a.txt")).get()
        #expect(try runtime.block(on: FileSystem.contentsOfDirectoryFuture(directory)).get().isEmpty)
        try runtime.block(on: FileSystem.removeDirectoryFuture(directory)).get()
        #expect(!FileManager.default.fileExists(atPath: directory))
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("the async twins open, write, read, list and remove on a LoopThread, and leave nothing open")
    func asyncTwins() async throws {
        let loop = try LoopThread(name: "fs-async")
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let bytes = FileTest.pattern(100_000)
        let (read, atOffset, names, size) = try await loop.spawn { () async throws -> ([UInt8], [UInt8], [String], Int64) in
            let directory = try await FileSystem.makeTemporaryDirectory(prefix: "/tmp/weft-fs-async-")
            let file = try await File.open(directory + "/data", options: [.read, .write, .create])
            try await file.write(bytes)
            try await file.flush()
            try await file.sync()
            let size = try await file.status().size
            let atOffset = try await file.read(upTo: 5, at: 10)
            file.close()
            let read = try await FileSystem.readFile(directory + "/data")
            let names = try await FileSystem.contentsOfDirectory(directory).map(\.name)
            try await FileSystem.removeFile(directory + "/data")
            try await FileSystem.removeDirectory(directory)
            return (read, atOffset, names, size)
        }.value
        #expect(read == bytes)
        #expect(atOffset == Array(bytes[10..<15]))
        #expect(names == ["data"])
        #expect(size == 100_000)
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }
}
