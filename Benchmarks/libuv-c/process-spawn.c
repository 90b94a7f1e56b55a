/*
 * process-spawn.c - libuv baseline: spawn /bin/true and await its exit, N times.
 *
 * Keeps C children in flight (default 1: one after another): each uv_spawn
 * of /bin/true (argv {"/bin/true", NULL}, the parent's environment, stdin,
 * stdout and stderr inherited) gets a malloc'd uv_process_t; its exit
 * callback checks the status, closes the handle (freed in the close
 * callback) and spawns the next. Measures the wall time (CLOCK_MONOTONIC)
 * from the first spawn to the last exit; exits 1 on any spawn failure or
 * non-zero status.
 *
 * Last line of output:
 *   libuv-c process-spawn n=N ns_per_op=X bytes_per_op=0.0 wall_ms=Z
 *
 * LD_PRELOAD is removed from the environment before the first spawn, so that
 * a library preloaded into this process is not loaded into the children.
 *
 * Usage: process-spawn [-n N] [-c CONCURRENT]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static long total = 2000, started, exited;
static int failed;
static char *arguments[] = {"/bin/true", NULL};
static uv_stdio_container_t stdio[3];
static uv_process_options_t options;

static void on_close(uv_handle_t *handle) { free(handle); }

static void spawn_one(uv_loop_t *loop);

static void on_exit_cb(uv_process_t *process, int64_t status, int signal) {
    if (status != 0 || signal != 0) failed = 1;
    exited++;
    uv_close((uv_handle_t *)process, on_close);
    if (started < total) spawn_one(process->loop);
}

static void spawn_one(uv_loop_t *loop) {
    uv_process_t *process = malloc(sizeof *process);
    started++;
    int rc = uv_spawn(loop, process, &options);
    if (rc != 0) {
        fprintf(stderr, "uv_spawn: %s\n", uv_strerror(rc));
        failed = 1;
        uv_close((uv_handle_t *)process, on_close);
    }
}

int main(int argc, char **argv) {
    long concurrent = 1;
    /* The children inherit the environment: a library preloaded into this
     * process (the control run of docs/BENCHMARKS.md, "Processes") must not
     * be loaded into every /bin/true as well. */
    unsetenv("LD_PRELOAD");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-n") == 0) total = atol(argv[i + 1]);
        else if (strcmp(argv[i], "-c") == 0) concurrent = atol(argv[i + 1]);
    }
    for (int i = 0; i < 3; i++) {
        stdio[i].flags = UV_INHERIT_FD;
        stdio[i].data.fd = i;
    }
    options.exit_cb = on_exit_cb;
    options.file = arguments[0];
    options.args = arguments;
    options.stdio_count = 3;
    options.stdio = stdio;
    uv_loop_t *loop = uv_default_loop();
    uint64_t start = now_ns();
    for (long i = 0; i < concurrent && started < total; i++) spawn_one(loop);
    uv_run(loop, UV_RUN_DEFAULT);
    uint64_t elapsed = now_ns() - start;
    if (failed || exited != total) {
        fprintf(stderr, "process-spawn: %ld of %ld exited cleanly\n", exited, total);
        return 1;
    }
    printf("libuv-c process-spawn n=%ld ns_per_op=%.1f bytes_per_op=0.0 wall_ms=%.1f\n", total,
           (double)elapsed / (double)total, (double)elapsed / 1e6);
    return 0;
}
