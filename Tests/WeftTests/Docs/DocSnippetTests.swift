import Foundation
import Testing

/// Where the repository and the tools the snippet check needs are.
enum DocSnippetCheck {
    /// The checkout: this file is `Tests/WeftTests/Docs/DocSnippetTests.swift`.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static let script = root.appendingPathComponent("Scripts/check-doc-snippets")

    /// The first executable named `name` on `PATH`.
    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static let python = executable("python3")
    static let swift = executable("swift")
    static var canRun: Bool {
        python != nil && swift != nil && FileManager.default.fileExists(atPath: script.path)
    }

    /// One snippet's result, as `check-doc-snippets --json` writes it.
    struct Result: Decodable {
        let path: String
        let line: Int
        let mode: String
        let status: String
        let detail: String
    }
}

extension TimingSensitive {
    /// Every Swift snippet of README.md, the DocC catalog and the doc comments,
    /// compiled and run by `Scripts/check-doc-snippets`; each failure is
    /// reported at the snippet's line. In the serialized suite because its
    /// build of a throwaway package loads every core for a minute or two, which
    /// must not overlap a timing-sensitive test; the sanitizer runs skip it with
    /// the rest (the snippet package is not built with a sanitizer anyway).
    @Suite("Documentation snippets")
    struct DocSnippetTests {
        @Test("every Swift snippet in the documentation compiles and runs",
              .enabled(if: DocSnippetCheck.canRun,
                       "needs python3 and swift on PATH and the checkout's Scripts/check-doc-snippets"),
              .timeLimit(.minutes(10)))
        func everySnippetCompilesAndRuns() throws {
            let report = FileManager.default.temporaryDirectory
                .appendingPathComponent("weft-doc-snippets-\(getpid()).json")
            defer { try? FileManager.default.removeItem(at: report) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: DocSnippetCheck.python!)
            process.arguments = [DocSnippetCheck.script.path, "--json", report.path]
            process.currentDirectoryURL = DocSnippetCheck.root
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()

            guard let data = try? Data(contentsOf: report),
                  let results = try? JSONDecoder().decode([DocSnippetCheck.Result].self, from: data) else {
                Issue.record("check-doc-snippets wrote no results (exit status \(process.terminationStatus)):\n\(text.suffix(4000))")
                return
            }
            #expect(results.count >= 40, "the documentation had 44 Swift snippets when this test was written")
            for failed in results where failed.status != "pass" {
                Issue.record(
                    "\(failed.path):\(failed.line) [\(failed.mode)]: \(failed.detail)",
                    sourceLocation: SourceLocation(
                        fileID: "Weft/\(failed.path)",
                        filePath: DocSnippetCheck.root.appendingPathComponent(failed.path).path,
                        line: failed.line, column: 1))
            }
            #expect(process.terminationStatus == 0 || results.contains { $0.status != "pass" },
                    "check-doc-snippets failed with every snippet passing:\n\(text.suffix(4000))")
        }
    }
}
