import Glibc
import Weft

// MARK: - shared-loop-at-descriptor-limit

/// Not a benchmark: the check that an async operation made off any loop,
/// whose first use starts the shared loop, throws when that loop cannot start
/// (out of descriptors) instead of killing the process, and that the next one
/// starts it. In a process of its own (the test suite runs it: the shared loop
/// of the test process started long before, and lowering the limit there
/// would starve the tests running beside it). Lowers `RLIMIT_NOFILE` to the
/// lowest free descriptor, resolves `127.0.0.1` (which must fail with
/// `EMFILE`), restores the limit and resolves it again (which must succeed).
/// Prints `weft-bench shared-loop-at-descriptor-limit error=<the error>
/// then=<the addresses found>` and exits 0 when both went as they must.
///
/// A loop runs and is dropped first: libuv's first loop of a process sets up
/// its signal handling, and aborts when that finds no descriptor (libuv's own
/// limit, which Weft cannot catch).
func checkSharedLoopAtDescriptorLimit() async throws {
    _ = try Runtime()
    let saved = try lowerDescriptorLimitToLowestFree()
    let failure: WeftError?
    do {
        _ = try await resolve(host: "127.0.0.1", port: 80)
        failure = nil
    } catch let error as WeftError {
        failure = error
    }
    restoreDescriptorLimit(saved)
    let addresses = try await resolve(host: "127.0.0.1", port: 80)
    print("weft-bench shared-loop-at-descriptor-limit error=\(failure.map { "\($0)" } ?? "none") then=\(addresses)")
    if failure?.code == .tooManyOpenFiles, !addresses.isEmpty { return }
    exit(1)
}

// MARK: - The descriptor limit

/// Lowers `RLIMIT_NOFILE` to the lowest free descriptor, so that the next
/// descriptor the process opens fails with `EMFILE`; returns the limit to
/// give back to ``restoreDescriptorLimit(_:)``.
func lowerDescriptorLimitToLowestFree() throws -> rlimit {
    let resource = Int32(RLIMIT_NOFILE.rawValue)
    var saved = rlimit()
    guard getrlimit(resource, &saved) == 0 else { throw WeftError(.invalidArgument, operation: "getrlimit") }
    let lowestFree = dup(0)
    close(lowestFree)
    var lowered = saved
    lowered.rlim_cur = rlim_t(max(0, lowestFree))
    guard setrlimit(resource, &lowered) == 0 else { throw WeftError(.invalidArgument, operation: "setrlimit") }
    return saved
}

/// Puts back the limit ``lowerDescriptorLimitToLowestFree()`` lowered.
func restoreDescriptorLimit(_ saved: rlimit) {
    var saved = saved
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved)
}
