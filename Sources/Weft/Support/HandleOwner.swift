import CLibUV

/// The Swift object a libuv handle's `data` points back to (unretained), or
/// nil once the owner closed the handle (closing clears `data`): how every
/// handle callback reaches its owner (docs/ARCHITECTURE.md, "Who owns what").
///
/// `Handle` is any `uv_*_t` handle type: each starts with the `uv_handle_t`
/// fields, `data` among them. The owner is alive while `data` is set: its
/// deinit clears `data` before the handle can call back again.
@inline(__always)
func handleOwner<Owner: AnyObject, Handle>(_ handle: UnsafeMutablePointer<Handle>?, as _: Owner.Type) -> Owner? {
    guard let data = UnsafeMutableRawPointer(handle)?.assumingMemoryBound(to: uv_handle_t.self).pointee.data else {
        return nil
    }
    return Unmanaged<Owner>.fromOpaque(data).takeUnretainedValue()
}

/// Runs `body` with the owner of `handle` (see ``handleOwner(_:as:)``) without
/// retaining it, or returns nil once the owner closed the handle: for the
/// callbacks libuv makes per datagram, where a retain and a release each
/// time are measurable. The owner is alive while `data` is set (as
/// `handleOwner` says) and when `body` starts; but waking and letting go of
/// the waiting wakers (`WaitingWakers.wakeAll()`) can release the owner's
/// last reference: a stale waker can be the last owner of a finished task
/// whose output holds the stream or socket. So in `body` that wake must be
/// the owner's last access to itself: nothing may follow it that touches the
/// owner (the owner's deinit closes the handle, which libuv allows inside
/// its callback).
@inline(__always)
func withUnretainedHandleOwner<Owner: AnyObject, Handle, Result>(
    _ handle: UnsafeMutablePointer<Handle>?, as _: Owner.Type, _ body: (Owner) -> Result
) -> Result? {
    guard let data = UnsafeMutableRawPointer(handle)?.assumingMemoryBound(to: uv_handle_t.self).pointee.data else {
        return nil
    }
    return Unmanaged<Owner>.fromOpaque(data)._withUnsafeGuaranteedRef(body)
}
