import Foundation
import Testing
import Weft

/// What the file tests share: a temporary directory under /tmp, removed afterwards.
enum FileTest {
    /// Runs `body` with a new directory under /tmp, then removes it and all it holds.
    static func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let path = "/tmp/weft-fs-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }

    /// `withTemporaryDirectory` for async bodies.
    static func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
        let path = "/tmp/weft-fs-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }

    /// `count` bytes of a pattern that repeats only every 251 bytes, so a
    /// block read from the wrong offset does not compare equal.
    static func pattern(_ count: Int, seed: Int = 0) -> [UInt8] {
        let cycle = (0..<251).map { UInt8(truncatingIfNeeded: ($0 + seed) % 251) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 251)
        while bytes.count < count { bytes.append(contentsOf: cycle) }
        bytes.removeLast(bytes.count - count)
        return bytes
    }
}
