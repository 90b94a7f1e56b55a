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
