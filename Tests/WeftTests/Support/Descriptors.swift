import CLibUV

/// `pipe(2)` with both ends close-on-exec, as every descriptor a test makes
/// must be (docs/RELIABILITY.md: the suites share one process, and a child
/// another suite spawns keeps every descriptor that is not close-on-exec).
/// Through libuv's `uv_pipe` (`pipe2(O_CLOEXEC)`), which Glibc's module does
/// not declare. Blocking ends; 0, or a negated errno.
func closeOnExecPipe(_ ends: inout [Int32]) -> Int32 {
    precondition(ends.count == 2)
    return uv_pipe(&ends, 0, 0)
}
