import CLibUV

/// What the spawn of a command would fail with in the child, asked before
/// anything is opened for it: the child's `chdir` to its working directory and
/// its `execvp` of the executable, as glibc looks it up.
///
/// A `.file` standard output or error is truncated before the child starts
/// (it must be: truncating after the spawn returns would cut what the child
/// already wrote, the child running from its `exec` on). A spawn that then
/// failed (a misspelt program, a missing directory) destroyed the file for
/// nothing; the spawn fails here instead, with the error libuv would report,
/// before the file is touched. What cannot be told beforehand (the program
/// removed in between, out of descriptors or processes) may still fail the
/// spawn after the truncation.
enum SpawnPreflight {
    /// The libuv error (negative) the child's `chdir` or `execvp` would fail
    /// with, or nil if both would succeed. `path` is the child's `PATH`, its
    /// bytes as they are (a directory's name need not be UTF-8: decoded, it
    /// named a directory that does not exist, and a program `execvp` would
    /// find was refused), nil when it has none.
    static func failure(executable: String, workingDirectory: String?, path: [UInt8]?) -> Int32? {
        if let workingDirectory, let error = directoryError(Array(workingDirectory.utf8)) { return error }
        let slash = UInt8(ascii: "/")
        /// A relative candidate is looked up from the child's working directory.
        func fromChildDirectory(_ candidate: [UInt8]) -> [UInt8] {
            guard let workingDirectory, candidate.first != slash else { return candidate }
            return Array(workingDirectory.utf8) + [slash] + candidate
        }
        let program = Array(executable.utf8)
        if program.isEmpty { return UV_ENOENT.rawValue }
        if program.contains(slash) {
            return executableError(fromChildDirectory(program))
        }
        // execvp: each entry of PATH in turn (an empty one is the working
        // directory); EACCES from any if none could run, else ENOENT; an
        // error other than "not there" ends the search with that error.
        var deniedOnce = false
        for entry in (path ?? Array("/bin:/usr/bin".utf8)).split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false) {
            let candidate = fromChildDirectory(entry.isEmpty ? program : Array(entry) + [slash] + program)
            switch executableError(candidate) {
            case nil: return nil
            case UV_EACCES.rawValue: deniedOnce = true
            case UV_ENOENT.rawValue, UV_ENOTDIR.rawValue, -ESTALE, UV_ENODEV.rawValue, UV_ETIMEDOUT.rawValue: break
            case let error?: return error
            }
        }
        return deniedOnce ? UV_EACCES.rawValue : UV_ENOENT.rawValue
    }

    /// Why `execve(candidate)` would fail, as a libuv error, or nil: it is a
    /// regular file the effective user may execute.
    private static func executableError(_ candidate: [UInt8]) -> Int32? {
        accessError(candidate, type: mode_t(S_IFREG), otherwise: UV_EACCES.rawValue)
    }

    /// Why `chdir(directory)` would fail, as a libuv error, or nil.
    private static func directoryError(_ directory: [UInt8]) -> Int32? {
        accessError(directory, type: mode_t(S_IFDIR), otherwise: UV_ENOTDIR.rawValue)
    }

    /// The libuv error of `stat(path)`, `otherwise` if it is not of `type`,
    /// else that of an execute (search) check for the effective user; nil if
    /// all pass. `path`: bytes, without the terminating NUL.
    private static func accessError(_ path: [UInt8], type: mode_t, otherwise: Int32) -> Int32? {
        (path + [0]).withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { path -> Int32? in
                var status = stat()
                if stat(path.baseAddress!, &status) != 0 { return uv_translate_sys_error(weft_errno()) }
                if status.st_mode & mode_t(S_IFMT) != type { return otherwise }
                if faccessat(AT_FDCWD, path.baseAddress!, X_OK, AT_EACCESS) != 0 { return uv_translate_sys_error(weft_errno()) }
                return nil
            }
        }
    }
}
