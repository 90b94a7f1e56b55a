/*
 * timers.c - libuv baseline: N one-shot timers with pseudo-random timeouts.
 *
 * Creates N heap-allocated uv_timer_t (default 1,000,000), each started with
 * a timeout of rng % 1001 ms (xorshift64*, fixed seed, so runs are
 * reproducible). Measures:
 *   - wall time from just before creating the first timer to the moment the
 *     last timer callback runs (CLOCK_MONOTONIC);
 *   - bytes per timer: increase of glibc mallinfo2().uordblks + hblkhd (heap
 *     and mmapped chunks, as weft-bench counts) between before creating the
 *     timers and right after all of them were started.
 * Each callback counts the fired timers and closes its handle; the close
 * callback frees it. Exits 1 unless all N fired.
 *
 * Last line of output:
 *   libuv-c timers n=N ns_per_op=X bytes_per_op=Y wall_ms=Z
 *
 * Usage: timers [-n N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

/* xorshift64* */
static uint64_t rng_next(void) {
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t n_timers = 1000000;
static uint64_t fired;
static uint64_t t_end;

static void on_close(uv_handle_t *h) { free(h); }

static void on_timer(uv_timer_t *t) {
    if (++fired == n_timers)
        t_end = now_ns();
    uv_close((uv_handle_t *)t, on_close);
}

static void usage(const char *prog) {
    fprintf(stderr, "usage: %s [-n N]\n", prog);
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno || *end || v == 0)
                usage(argv[0]);
            n_timers = v;
        } else {
            usage(argv[0]);
        }
    }

    uv_loop_t *loop = uv_default_loop();
    uv_update_time(loop);

    struct mallinfo2 mi0 = mallinfo2();
    uint64_t t0 = now_ns();

    for (uint64_t i = 0; i < n_timers; i++) {
        uv_timer_t *t = malloc(sizeof *t);
        if (!t) {
            fprintf(stderr, "timers: out of memory after %llu timers\n", (unsigned long long)i);
            return 1;
        }
        uint64_t timeout = rng_next() % 1001;
        int r = uv_timer_init(loop, t);
        if (r == 0)
            r = uv_timer_start(t, on_timer, timeout, 0);
        if (r != 0) {
            fprintf(stderr, "timers: uv_timer_start: %s\n", uv_strerror(r));
            return 1;
        }
    }

    struct mallinfo2 mi1 = mallinfo2();

    uv_run(loop, UV_RUN_DEFAULT);

    if (fired != n_timers) {
        fprintf(stderr, "timers: only %llu of %llu timers fired\n", (unsigned long long)fired,
                (unsigned long long)n_timers);
        return 1;
    }
    int r = uv_loop_close(loop);
    if (r != 0)
        fprintf(stderr, "timers: uv_loop_close: %s\n", uv_strerror(r));

    double wall_ns = (double)(t_end - t0);
    double bytes = ((double)mi1.uordblks + (double)mi1.hblkhd) - ((double)mi0.uordblks + (double)mi0.hblkhd);
    printf("libuv-c timers n=%llu ns_per_op=%.1f bytes_per_op=%.1f wall_ms=%.1f\n",
           (unsigned long long)n_timers, wall_ns / (double)n_timers, bytes / (double)n_timers, wall_ns / 1e6);
    return 0;
}
