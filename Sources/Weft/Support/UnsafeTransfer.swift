/// A value moved to another thread exactly once.
///
/// Unsafe because nothing checks that use: `@unchecked Sendable` is sound only
/// because every `UnsafeTransfer` is built from a value the caller gave up
/// (`sending`, or a future's output taken out of its task), is moved across one
/// thread boundary, and is unwrapped once on the other side, so no two threads
/// ever hold the value at the same time.
@usableFromInline
struct UnsafeTransfer<Value>: @unchecked Sendable {
    @usableFromInline var value: Value

    @inlinable
    init(value: Value) {
        self.value = value
    }
}
