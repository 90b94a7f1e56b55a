import Foundation
import Testing
import Weft

@Suite("weft-cat")
struct CatSampleTests {
    /// Runs weft-cat with `arguments`, `input` on its standard input (a pipe);
    /// returns its status, standard output and standard error.
    static func run(_ arguments: [String], input: [UInt8] = []) throws -> (status: Int32, output: [UInt8], error: String) {
        let path = try #require(SampleBinaries.path("weft-cat"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let (stdin, stdout, stderr) = (Pipe(), Pipe(), Pipe())
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Standard input is fed from a thread of its own, so that a child
        // blocked writing a full stdout pipe cannot deadlock the test.
        let feeder = Thread {
            stdin.fileHandleForWriting.write(Data(input))
            try? stdin.fileHandleForWriting.close()
        }
        feeder.start()
        let errors = SharedBox(Data())
        let errorReader = Thread { errors.set(stderr.fileHandleForReading.readDataToEndOfFile()) }
        errorReader.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while errorReader.isExecuting || !errorReader.isFinished { usleep(1000) }
        return (process.terminationStatus, Array(output), String(decoding: errors.get(), as: UTF8.self))
    }

    @Test("copies files and standard input (`-`, or when no file is given) to standard output, in order",
          .enabled(if: SampleBinaries.path("weft-cat") != nil, "weft-cat is not built next to the test bundle"))
    func copies() throws {
        try FileTest.withTemporaryDirectory { directory in
            let first = FileTest.pattern(3_000_000, seed: 1)
            let second = Array("second file\n".utf8)
            try Data(first).write(to: URL(fileURLWithPath: directory + "/first"))
            try Data(second).write(to: URL(fileURLWithPath: directory + "/second"))
            let piped = FileTest.pattern(40_000, seed: 2)

            let all = try Self.run([directory + "/first", "-", directory + "/second"], input: piped)
            #expect(all.status == 0)
            #expect(all.output == first + piped + second)
            #expect(all.error.isEmpty)

            let onlyInput = try Self.run([], input: piped)
            #expect(onlyInput.status == 0)
            #expect(onlyInput.output == piped)

            let small = try Self.run(["--buffer-size", "4", directory + "/first"])
            #expect(small.output == first)
        }
    }

    @Test("a missing file is reported on stderr, naming it; the others are copied and the status is 1",
          .enabled(if: SampleBinaries.path("weft-cat") != nil, "weft-cat is not built next to the test bundle"))
    func missingFile() throws {
        try FileTest.withTemporaryDirectory { directory in
            try Data("present\n".utf8).write(to: URL(fileURLWithPath: directory + "/present"))
            let result = try Self.run([directory + "/missing", directory + "/present"])
            #expect(result.status == 1)
            #expect(result.output == Array("present\n".utf8))
            #expect(result.error == "weft-cat: open \(directory)/missing: ENOENT (no such file or directory)\n")
        }
    }

    @Test("an unknown option is a usage error: status 2 and the usage on stderr",
          .enabled(if: SampleBinaries.path("weft-cat") != nil, "weft-cat is not built next to the test bundle"))
    func usageError() throws {
        let result = try Self.run(["--frobnicate"])
        #expect(result.status == 2)
        #expect(result.output.isEmpty)
        #expect(result.error.contains("unknown option --frobnicate"))
        #expect(result.error.contains("usage: weft-cat"))
    }
}
