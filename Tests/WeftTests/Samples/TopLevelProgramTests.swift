import Testing

/// The overload trap (issue 21): in top-level code Swift once resolved
/// `try await sleep(for:)` to the poll builder, which returned a `Sleep` that
/// was dropped at once. Poll forms are now spelled `…Future`, so a top-level
/// program can only call the async operations. `weft-top-level-check`
/// (`Tests/TopLevelAwait/main.swift`) is such a program; this runs it.
@Suite("A top-level program's awaits")
struct TopLevelProgramTests {
    @Test("sleep, sleep(until:), timeout, TCP and channel calls in top-level code each do what their async form does",
          .enabled(if: SampleBinaries.path("weft-top-level-check") != nil,
                   "weft-top-level-check is not built next to the test bundle"))
    func topLevelAwaitsRunTheAsyncForms() throws {
        let path = try #require(SampleBinaries.path("weft-top-level-check"))
        let child = try SampleChild(path, arguments: [])
        defer { child.stop() }
        var lines: [String] = []
        while let line = child.readLine(within: .seconds(30)) { lines.append(line) }
        #expect(child.waitForExit(within: .seconds(10)))
        #expect(child.exitStatus == 0, "output: \(lines)")
        try #require(lines.count == 5, "output: \(lines)")

        // Each figure is the milliseconds the call took; a poll builder
        // mistaken for the async form takes well under 1 ms.
        func milliseconds(_ line: String, _ prefix: String) -> Int? {
            guard line.hasPrefix(prefix + " ") else { return nil }
            return Int(line.dropFirst(prefix.count + 1).prefix { $0.isNumber })
        }
        let slept = try #require(milliseconds(lines[0], "sleep(for:)"), "line: \(lines[0])")
        #expect(slept >= 300)
        let sleptUntil = try #require(milliseconds(lines[1], "sleep(until:)"), "line: \(lines[1])")
        #expect(sleptUntil >= 200)
        let timedOut = try #require(milliseconds(lines[2], "timeout"), "line: \(lines[2])")
        #expect(timedOut >= 100 && timedOut < 9_000)
        #expect(lines[2].hasSuffix("timed out"))
        #expect(lines[3] == "tcp ping")
        #expect(lines[4] == "channel 7")
    }
}
