import CWeftSupport
import Synchronization

extension Mutex where Value: ~Copyable {
    /// `withLock`, with the lock's happens-before edge announced to
    /// ThreadSanitizer (see `weft_tsan_acquire` in CWeftSupport): Weft takes
    /// every `Mutex` through this, or TSan reports the accesses the lock guards
    /// as races.
    ///
    /// The mutex's address names the lock. A `Mutex` is non-copyable and
    /// borrowed in place, so the address is the lock's own for its whole life;
    /// it is only handed to TSan as a key, never dereferenced.
    @inlinable @inline(__always)
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

extension Mutex where Value == Void {
    /// `locked` for a lock that guards no value of its own (what it guards
    /// lies elsewhere), with no access to the empty value: ThreadSanitizer
    /// places an `inout` access to an empty value at the address of whatever
    /// is laid out after it, and reports reads of that as races.
    @inlinable @inline(__always)
    borrowing func locked<Result, E: Error>(_ body: () throws(E) -> Result) throws(E) -> Result {
        let address = withUnsafePointer(to: self) { UnsafeRawPointer($0) }
        return try withLock { (_: inout sending Void) throws(E) -> sending Result in
            weft_tsan_acquire(address)
            defer { weft_tsan_release(address) }
            return try body()
        }
    }
}
