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

/// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`: Swift cannot call the variadic `fcntl`
/// without the platform module's overlay.
static inline int weft_dup_cloexec(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 0); }

/// `close` and `write`, under names a Swift type with its own `close()` or
/// `write(_:)` method can call without qualifying them by the platform module.
static inline int weft_close(int fd) { return close(fd); }
static inline ssize_t weft_write(int fd, const void *bytes, size_t count) { return write(fd, bytes, count); }

/// Whether `fd` is an open descriptor (`fcntl` is variadic: Swift cannot call it).
static inline int weft_descriptor_is_open(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }
/// The process's environment (`environ`), which Swift sees only through the
/// platform module.
extern char **environ;
static inline char **weft_environ(void) { return environ; }

/// `open(path, flags, mode)`: Swift cannot call the variadic `open` without the
/// platform module's overlay.
static inline int weft_open(const char *path, int flags, int mode) { return open(path, flags, (mode_t)mode); }
#endif
