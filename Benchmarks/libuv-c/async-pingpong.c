/*
 * async-pingpong.c - libuv baseline for weft-bench cross-loop: two threads,
 * each running its own uv_loop, hand a counter back and forth N times through
 * each other's uv_async_t (uv_async_send wakes the other loop from epoll_wait).
 * A hand-off is one send plus the wake-up and callback on the other loop.
 *
 * Last line of output:
 *   libuv-c async-pingpong n=N ns_per_op=X bytes_per_op=0.0 wall_ms=Z
 * where ns_per_op is the wall time (CLOCK_MONOTONIC) per hand-off.
 *
 * Usage: async-pingpong [-n N]   (default 50000)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

typedef struct side {
    uv_loop_t loop;
    uv_async_t inbox;
    struct side *peer;
} side_t;

static long total = 50000;
/* Written by the side that sends, read by the side woken: uv_async_send and
   the callback order the accesses (libuv documents a memory barrier). */
static long handoffs;
static int finished;

static void on_wake(uv_async_t *async) {
    side_t *self = async->data;
    if (finished) { /* the peer's last send: close our inbox, send nothing */
        uv_close((uv_handle_t *)&self->inbox, NULL);
        return;
    }
    if (handoffs >= total) { /* tell the peer, then close ours */
        finished = 1;
        uv_async_send(&self->peer->inbox);
        uv_close((uv_handle_t *)&self->inbox, NULL);
        return;
    }
    handoffs++;
    uv_async_send(&self->peer->inbox);
}

static void *run_side(void *arg) {
    side_t *self = arg;
    uv_run(&self->loop, UV_RUN_DEFAULT);
    return NULL;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "-n") == 0) total = strtol(argv[++i], NULL, 10);
    static side_t a, b;
    a.peer = &b;
    b.peer = &a;
    side_t *sides[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        uv_loop_init(&sides[i]->loop);
        uv_async_init(&sides[i]->loop, &sides[i]->inbox, on_wake);
        sides[i]->inbox.data = sides[i];
    }
    pthread_t thread;
    double start = now_ns();
    pthread_create(&thread, NULL, run_side, &b);
    uv_async_send(&a.inbox); /* the first hand-off goes to A */
    handoffs = 1;
    run_side(&a);
    pthread_join(thread, NULL);
    double wall = now_ns() - start;
    printf("libuv-c async-pingpong n=%ld ns_per_op=%.1f bytes_per_op=0.0 wall_ms=%.1f\n", handoffs, wall / (double)handoffs,
           wall / 1e6);
    return 0;
}
