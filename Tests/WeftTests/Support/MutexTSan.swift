import CWeftSupport
import Synchronization

extension Mutex where Value: ~Copyable {
    /// `withLock`, announced to ThreadSanitizer, for the tests' own mutexes:
    /// the same as Weft's internal `Mutex.locked` (Sources/Weft/Sync/MutexTSan.swift),
    /// which tests cannot see. Without it `Scripts/sanitize thread` reports the
    /// accesses these locks guard as races (Synchronization.Mutex's slow path is
    /// not instrumented).
    @inline(__always)
    borrowing func locked<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        let address = withUnsafePointer(to: self) { UnsafeRawPointer($0) }
        return try withLock { (value: inout sending Value) throws(E) -> sending Result in
            weft_tsan_acquire(address)
            defer { weft_tsan_release(address) }
            return try body(&value)
        }
    }
}
