import CWeftSupport
import Foundation
import Glibc
import Testing
import Weft

@Suite("weft-cat")
struct CatSampleTests {
    /// Runs weft-cat with `arguments` (in `directory`, if given), `input` on
    /// its standard input (a pipe); returns its status, standard output and
    /// standard error.
    static func run(_ arguments: [String], input: [UInt8] = [], in directory: String? = nil) throws -> (status: Int32, output: [UInt8], error: String) {
        let path = try #require(SampleBinaries.path("weft-cat"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
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

    @Test("an error on stderr sharing standard output's pipe (2>&1), which weft-cat's StandardStream made non-blocking, waits for room in the full pipe instead of being dropped",
          .enabled(if: SampleBinaries.path("weft-cat") != nil, "weft-cat is not built next to the test bundle"))
    func errorWaitsForAFullSharedPipe() throws {
        try FileTest.withTemporaryDirectory { directory in
            let big = FileTest.pattern(65_536, seed: 3)  // fills a pipe of the default 64 KiB
            try Data(big).write(to: URL(fileURLWithPath: directory + "/big"))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try #require(SampleBinaries.path("weft-cat")))
            process.arguments = [directory + "/big", directory + "/missing"]
            let shared = Pipe()
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = shared
            process.standardError = shared  // one open file description, as 2>&1
            try process.run()
            usleep(1_000_000)  // nothing read while big fills the pipe and missing fails
            let output = shared.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 1)
            #expect(output.prefix(big.count) == Data(big))
            #expect(String(decoding: output.dropFirst(big.count), as: UTF8.self)
                    == "weft-cat: open \(directory)/missing: ENOENT (no such file or directory)\n")
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

    @Test("after `--`, `-h` is a file to copy, as the help says; before it, the help (it printed the help for `weft-cat -- -h`)",
          .enabled(if: SampleBinaries.path("weft-cat") != nil, "weft-cat is not built next to the test bundle"))
    func helpFlagAfterDoubleDash() throws {
        try FileTest.withTemporaryDirectory { directory in
            try Data("x\n".utf8).write(to: URL(fileURLWithPath: directory + "/-h"))
            let file = try Self.run(["--", "-h"], in: directory)
            #expect(file.status == 0)
            #expect(file.output == Array("x\n".utf8))
            let help = try Self.run(["-h", "--", "-h"], in: directory)
            #expect(help.status == 0)
            #expect(String(decoding: help.output, as: UTF8.self).hasPrefix("usage: weft-cat"))
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

    // Standard streams of each kind (StandardStream), through weft-cat.

    @Test("standard input and output that are files: read and written on the pool, the bytes exact",
          .enabled(if: SampleBinaries.path("weft-cat") != nil, "weft-cat is not built next to the test bundle"))
    func standardStreamsAsFiles() throws {
        try FileTest.withTemporaryDirectory { directory in
            let bytes = FileTest.pattern(2_000_000, seed: 3)
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/in"))
            _ = FileManager.default.createFile(atPath: directory + "/out", contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try #require(SampleBinaries.path("weft-cat")))
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: directory + "/in"))
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/out"))
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/out"))) == bytes)
        }
    }

    @Test("a file that is also standard output (weft-cat f >> f, weft-cat < f >> f) is refused as cat refuses it, the file unchanged, the status 1 (it appended the file to itself until the disk was full); empty, it has nothing to copy, and the status is 0, as cat's (Weft's copy refuses it even empty)",
          .enabled(if: SampleBinaries.path("weft-cat") != nil, "weft-cat is not built next to the test bundle"))
    func inputFileIsOutputFile() throws {
        try FileTest.withTemporaryDirectory { directory in
            let path = directory + "/same"
            let twice = Array("twice?\n".utf8)
            for (arguments, bytes) in [([path], twice), ([], twice), ([path], [])] {
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                let appending = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
                #expect(appending >= 0)
                defer { close(appending) }
                let process = Process()
                process.executableURL = URL(fileURLWithPath: try #require(SampleBinaries.path("weft-cat")))
                process.arguments = arguments
                if arguments.isEmpty { process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)) }
                process.standardOutput = FileHandle(fileDescriptor: appending, closeOnDealloc: false)
                let errors = Pipe()
                process.standardError = errors
                try process.run()
                // Stopped as soon as the file grows (a regression would fill the disk).
                let deadline = ContinuousClock.now + .seconds(20)
                var grown = false
                while process.isRunning && ContinuousClock.now < deadline && !grown {
                    usleep(1_000)
                    var status = stat()
                    grown = stat(path, &status) == 0 && status.st_size > bytes.count
                }
                if process.isRunning { process.terminate() }
                process.waitUntilExit()
                let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                #expect(process.terminationStatus == (bytes.isEmpty ? 0 : 1), "\(arguments): \(message)")
                #expect(bytes.isEmpty ? message.isEmpty : message.contains("input file is output file"), "\(message)")
                #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == bytes)
            }
        }
    }

    @Test("a pipe as standard output is left in blocking mode, as found, for the other processes sharing it",
          .enabled(if: SampleBinaries.path("weft-cat") != nil, "weft-cat is not built next to the test bundle"))
    func pipeLeftBlocking() throws {
        try FileTest.withTemporaryDirectory { directory in
            try Data("line\n".utf8).write(to: URL(fileURLWithPath: directory + "/in"))
            var ends: [Int32] = [-1, -1]
            try #require(closeOnExecPipe(&ends) == 0)
            defer { close(ends[0]); close(ends[1]) }
            #expect(fcntl(ends[1], F_GETFL) & O_NONBLOCK == 0)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try #require(SampleBinaries.path("weft-cat")))
            process.arguments = [directory + "/in"]
            process.standardOutput = FileHandle(fileDescriptor: ends[1], closeOnDealloc: false)
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            // The child's standard output shared this description: libuv made
            // it non-blocking while weft-cat wrote; it must be blocking again.
            #expect(fcntl(ends[1], F_GETFL) & O_NONBLOCK == 0)
            var buffer = [UInt8](repeating: 0, count: 16)
            #expect(read(ends[0], &buffer, buffer.count) == 5)
            #expect(Array(buffer[..<5]) == Array("line\n".utf8))
        }
    }

    /// Runs weft-cat with `arguments` and a new pseudo-terminal as its
    /// standard input, types each of `typed` 100 ms apart, and returns its
    /// exit status and what it wrote.
    static func runOnTerminal(_ arguments: [String], typing typed: [String]) throws -> (status: Int32, output: String) {
        var master: Int32 = -1
        var slave: Int32 = -1
        let opened = weft_open_pseudo_terminal(&master, &slave)
        try #require(opened == 0, "no pseudo-terminal available (error \(opened))")
        defer { close(master) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(SampleBinaries.path("weft-cat")))
        process.arguments = arguments
        process.standardInput = FileHandle(fileDescriptor: slave, closeOnDealloc: true)
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        for text in typed {
            #expect(write(master, text, text.utf8.count) == text.utf8.count)
            usleep(100_000)
        }
        let copied = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: copied, as: UTF8.self))
    }

    @Test("a terminal as standard input: a typed line is copied, and end of file (Ctrl-D) ends it",
          .enabled(if: SampleBinaries.path("weft-cat") != nil, "weft-cat is not built next to the test bundle"))
    func terminalInput() throws {
        // Typed at the terminal: a line, then Ctrl-D at the start of the next.
        let run = try Self.runOnTerminal([], typing: ["typed\n", "\u{4}"])
        #expect(run.status == 0)
        #expect(run.output == "typed\n")
    }

    @Test("a terminal read twice (`weft-cat - -`): each Ctrl-D ends one, and the second reads what is typed after the first (the end latched: the second copied nothing)",
          .enabled(if: SampleBinaries.path("weft-cat") != nil, "weft-cat is not built next to the test bundle"))
    func terminalReadTwice() throws {
        let run = try Self.runOnTerminal(["-", "-"], typing: ["first\n", "\u{4}", "second\n", "\u{4}"])
        #expect(run.status == 0)
        #expect(run.output == "first\nsecond\n")
    }
}
