// weft-cat: copies each FILE (or standard input, for `-` or when none is
// given) to standard output through Weft's files and standard streams, as
// cat does.
//
//     swift run -c release weft-cat [--buffer-size KiB] [FILE...]
//
// Standard input and output are `StandardStream`s: a terminal or a pipe is
// read and written on the loop, a file or device on the pool. A file copied
// to a file or device (`/dev/null`) uses `copy(from:to:)` between two Weft
// files, which runs on libuv's thread pool in chunks (one pool job reads and writes
// 128 KiB blocks, up to 64 MiB, as cat does). `--buffer-size` sets the
// files' block for sequential reads and writes (up to 4 MiB by default),
// used when the copy cannot run in chunks (docs/BENCHMARKS.md, "Files"). A file that
// cannot be read is reported on stderr (`weft-cat: open /tmp/missing: ENOENT
// (no such file or directory)`) and skipped, as is one that is standard
// output itself (`weft-cat f >> f`); the status is then 1. `--help`
// prints the options; a usage error exits with status 2.

import Glibc
import SampleSupport
import Weft

let command = SampleCommand(
    name: "weft-cat",
    synopsis: "[--buffer-size KiB] [FILE...]",
    help: """
    Copies each FILE to standard output, in order; standard input for `-` or when
    no FILE is given. A FILE that cannot be read is reported on stderr and skipped,
    and the exit status is then 1.

      --buffer-size KiB    the largest block read and written at once (default \(Options.defaultBufferSize / 1024))
      --                   what follows is a FILE even if it starts with `-`
      -h, --help           this text
    """)

/// The command line: the block size and the files, in order.
struct Options {
    /// Four times `File.defaultBufferSize`: the least CPU per byte measured.
    static let defaultBufferSize = 4 * 1024 * 1024
    var bufferSize = defaultBufferSize
    var files: [String] = []

    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        var onlyFiles = false
        while let argument = iterator.next() {
            if onlyFiles || argument == "-" || !argument.hasPrefix("-") {
                files.append(argument)
            } else if argument == "--" {
                onlyFiles = true
            } else if argument == "--buffer-size" {
                let value = command.value(after: argument, in: &iterator)
                bufferSize = command.number(value, for: argument, in: 4...65_536, unit: "KiB") * 1024
            } else {
                command.usageError("unknown option \(argument)")
            }
        }
        if files.isEmpty { files = ["-"] }
    }
}

/// Copies `source` to `output`: on the pool, block after block, when the
/// output is a file or a device too (`/dev/null`); through the output's
/// stream when it is a pipe or a terminal. Yields the bytes copied.
func copy(_ source: StandardStream, to output: StandardStream) async throws -> Int {
    if let file = source.file { return try await copy(file, to: output) }
    return try await value(of: Weft.copy(from: source, to: output)).get()
}

func copy(_ source: File, to output: StandardStream) async throws -> Int {
    if let target = output.file { return try await value(of: Weft.copy(from: source, to: target)).get() }
    return try await value(of: Weft.copy(from: source, to: output)).get()
}

/// The status of `source` if it is the output whose status is `output` (both
/// the same regular file), else nil. Copied, `weft-cat f >> f` appended the
/// file to itself until the disk was full; cat refuses it ("input file is
/// output file") unless it is empty, with nothing to copy (Weft's copy
/// refuses it even then).
func statusAsItsOwnOutput(_ source: File?, _ output: FileStatus?) async throws -> FileStatus? {
    guard let source, let output, output.kind == .regular else { return nil }
    let read = try await source.status()
    return read.device == output.device && read.inode == output.inode ? read : nil
}

/// Copies every file to standard output; whether all of them were copied.
/// Standard input and output are Weft's standard streams, each a terminal,
/// a pipe or a file as it turns out to be.
func concatenate(_ options: Options) async throws -> Bool {
    let output = try StandardStream.output()
    try output.file?.setBufferSize(options.bufferSize)
    let outputStatus = try await output.file?.status()  // what every input is checked against
    var input: StandardStream?
    var copiedAll = true
    for name in options.files {
        do {
            if name == "-" {
                if input == nil {
                    input = try StandardStream.input()
                    try input!.file?.setBufferSize(options.bufferSize)
                }
                if let own = try await statusAsItsOwnOutput(input!.file, outputStatus) {
                    if own.size > 0 {
                        writeError("weft-cat: -: input file is output file")
                        copiedAll = false
                    }
                    continue
                }
                _ = try await copy(input!, to: output)
            } else {
                let file: File
                do {
                    file = try await File.open(name)
                    try file.setBufferSize(options.bufferSize)
                } catch {
                    writeError("weft-cat: \(error)")
                    copiedAll = false
                    continue
                }
                defer { file.close() }
                if let own = try await statusAsItsOwnOutput(file, outputStatus) {
                    if own.size > 0 {
                        writeError("weft-cat: \(name): input file is output file")
                        copiedAll = false
                    }
                    continue
                }
                _ = try await copy(file, to: output)
            }
        } catch let error as WeftError where error.operation.hasPrefix("write") || error.operation.hasPrefix("flush") {
            throw error  // standard output is gone: nothing more can be copied
        } catch {
            writeError("weft-cat: \(error)")
            copiedAll = false
        }
    }
    try await output.flush()
    return copiedAll
}

let options = Options(command.arguments())
do {
    let loop = try LoopThread(name: "weft-cat")
    let copiedAll = try await loop.spawn { try await concatenate(options) }.value
    loop.shutdown()
    if !copiedAll { exit(1) }
} catch {
    command.fail(error)
}
