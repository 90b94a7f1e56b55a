/*
 * timer-churn.c - libuv baseline: TASKS "tasks" each sleeping 1 ms ITERS times.
 *
 * Each task is one uv_timer_t; its callback re-arms the same timer with
 * uv_timer_start(h, cb, 1, 0) until it has fired ITERS times, then closes it.
 * Wall time (CLOCK_MONOTONIC) from just before the first uv_timer_start to
 * the last fire. Defaults: 10,000 tasks x 100 iterations.
 *
 * Last line of output:
 *   libuv-c timer-churn n=TASKS*ITERS ns_per_op=X bytes_per_op=0.0 wall_ms=Z
 *
 * Usage: timer-churn [-t TASKS] [-i ITERS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

typedef struct {
    uv_timer_t timer;
    uint64_t count;
} task_t;

static uint64_t n_tasks = 10000;
static uint64_t n_iters = 100;
static uint64_t total_fired;
static uint64_t t_end;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void on_timer(uv_timer_t *h) {
    task_t *task = (task_t *)h; /* timer is the first member */
    if (++total_fired == n_tasks * n_iters)
        t_end = now_ns();
    if (++task->count < n_iters) {
        int r = uv_timer_start(h, on_timer, 1, 0);
        if (r != 0) {
            fprintf(stderr, "timer-churn: uv_timer_start: %s\n", uv_strerror(r));
            exit(1);
        }
    } else {
        uv_close((uv_handle_t *)h, NULL);
    }
}

static uint64_t parse_count(const char *s, const char *prog) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0) {
        fprintf(stderr, "usage: %s [-t TASKS] [-i ITERS]\n", prog);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            n_tasks = parse_count(argv[++i], argv[0]);
        } else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
            n_iters = parse_count(argv[++i], argv[0]);
        } else {
            fprintf(stderr, "usage: %s [-t TASKS] [-i ITERS]\n", argv[0]);
            return 2;
        }
    }

    uv_loop_t *loop = uv_default_loop();
    task_t *tasks = calloc(n_tasks, sizeof *tasks);
    if (!tasks) {
        fprintf(stderr, "timer-churn: out of memory\n");
        return 1;
    }
    for (uint64_t i = 0; i < n_tasks; i++)
        uv_timer_init(loop, &tasks[i].timer);

    uv_update_time(loop);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n_tasks; i++) {
        int r = uv_timer_start(&tasks[i].timer, on_timer, 1, 0);
        if (r != 0) {
            fprintf(stderr, "timer-churn: uv_timer_start: %s\n", uv_strerror(r));
            return 1;
        }
    }

    uv_run(loop, UV_RUN_DEFAULT);

    uint64_t n = n_tasks * n_iters;
    if (total_fired != n) {
        fprintf(stderr, "timer-churn: only %llu of %llu fires\n", (unsigned long long)total_fired,
                (unsigned long long)n);
        return 1;
    }
    uv_loop_close(loop);
    free(tasks);

    double wall_ns = (double)(t_end - t0);
    printf("libuv-c timer-churn n=%llu ns_per_op=%.1f bytes_per_op=0.0 wall_ms=%.1f\n", (unsigned long long)n,
           wall_ns / (double)n, wall_ns / 1e6);
    return 0;
}
