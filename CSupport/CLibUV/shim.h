#ifndef WEFT_CLIBUV_SHIM_H
#define WEFT_CLIBUV_SHIM_H
#include <uv.h>

// The platform's C library, for the few calls Weft makes beside libuv's. The
// Swift sources import no platform module (no `import Glibc`): they see these
// headers through CLibUV (its module map exports them), so a port to another C
// library (musl, or macOS with libuv from Homebrew) starts here and in
// CWeftSupport.c, which holds the Linux-only calls (SO_PEERCRED, CPU affinity,
// malloc_trim, accept4).
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/// `errno`, which Swift sees only through the platform module's overlay.
static inline int weft_errno(void) { return errno; }

/// `fcntl(fd, F_DUPFD_CLOEXEC, 3)`: Swift cannot call the variadic `fcntl`
/// without the platform module's overlay. Never 0, 1 or 2, even when one of
/// them is closed: libuv never closes those (its handles would leak the
/// duplicate), and the process's standard streams would read or write it.
static inline int weft_dup_cloexec(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 3); }

/// `close` and `write`, under names a Swift type with its own `close()` or
/// `write(_:)` method can call without qualifying them by the platform module.
static inline int weft_close(int fd) { return close(fd); }
static inline ssize_t weft_write(int fd, const void *bytes, size_t count) { return write(fd, bytes, count); }

/// Waits until `fd` has one of `events` (`POLLIN`, `POLLOUT`), or has failed
/// (the next read or write says how), at most `milliseconds` (-1: no limit);
/// `poll`'s result (0 on timeout, -1 with `errno` set), retried on `EINTR`.
static inline int weft_wait_for(int fd, short events, int milliseconds) {
    struct pollfd descriptor = { .fd = fd, .events = events };
    int result;
    do { result = poll(&descriptor, 1, milliseconds); } while (result < 0 && errno == EINTR);
    return result;
}

/// Whether `fd` is an open descriptor (`fcntl` is variadic: Swift cannot call it).
static inline int weft_descriptor_is_open(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }
// A descriptor's file status flags (O_NONBLOCK, O_APPEND, ...), and setting them.
static inline int weft_status_flags(int fd) { return fcntl(fd, F_GETFL); }
static inline int weft_set_status_flags(int fd, int flags) { return fcntl(fd, F_SETFL, flags); }
static inline int weft_is_nonblocking(int flags) { return (flags & O_NONBLOCK) != 0; }
// uv_guess_handle as a plain number (its enum's cases come from a macro Swift
// does not import): 1 a terminal, 2 a pipe or socket, 3 a file or device, 0 else.
static inline int weft_guess_handle(int fd) {
    switch (uv_guess_handle(fd)) {
    case UV_TTY: return 1;
    case UV_NAMED_PIPE: case UV_TCP: case UV_UDP: return 2;
    case UV_FILE: return 3;
    default: return 0;
    }
}
/// The process's environment (`environ`), which Swift sees only through the
/// platform module.
extern char **environ;
static inline char **weft_environ(void) { return environ; }

/// `open(path, flags, mode)`: Swift cannot call the variadic `open` without the
/// platform module's overlay.
static inline int weft_open(const char *path, int flags, int mode) { return open(path, flags, (mode_t)mode); }
#endif
