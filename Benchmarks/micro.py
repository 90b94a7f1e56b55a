#!/usr/bin/env python3
"""Weft's micro-benchmarks beside the plain-C libuv programs, in one run.

Runs every weft-bench subcommand and the C baselines (timers, timer-churn)
`--reps` times, interleaved, and prints the median of each figure as a Markdown
table. Every single-threaded program runs pinned to one CPU (`taskset -c`,
`--cpu`, default 1), as the echo servers are: on this 2-core box an unpinned
loop thread migrates between cores and measures 20-40% slower, and by more in
some runs than in others. cross-thread and cross-loop need both cores and are
not pinned.
Run from the repository root after
    swift build -c release --product weft-bench && make -C Benchmarks/libuv-c
"""
import argparse
import re
import statistics
import subprocess

PROGRAMS = [
    ("spawn", [".build/release/weft-bench", "spawn"]),
    ("wake", [".build/release/weft-bench", "wake"]),
    ("timers", [".build/release/weft-bench", "timers"]),
    ("timers (libuv C)", ["Benchmarks/libuv-c/timers"]),
    ("timer-churn", [".build/release/weft-bench", "timer-churn"]),
    ("timer-churn (libuv C)", ["Benchmarks/libuv-c/timer-churn"]),
    ("parked", [".build/release/weft-bench", "parked"]),
    ("resume", [".build/release/weft-bench", "resume"]),
    ("resume-preferring", [".build/release/weft-bench", "resume-preferring"]),
    ("channel", [".build/release/weft-bench", "channel"]),
    ("oneshot", [".build/release/weft-bench", "oneshot"]),
    ("notify", [".build/release/weft-bench", "notify"]),
    ("cross-thread", [".build/release/weft-bench", "cross-thread"]),
    ("cross-loop", [".build/release/weft-bench", "cross-loop"]),
    ("cross-loop (libuv C)", ["Benchmarks/libuv-c/async-pingpong"]),
]
# Two threads in parallel: a producer thread and a consumer loop, or two loops.
# Pinned to one CPU they measure something else: the producer fills the channel
# while the consumer waits for the CPU (cross-thread: about 60 ns per message
# pinned, 270 unpinned, the same binary).
UNPINNED_COMMANDS = {"cross-thread", "cross-loop", "Benchmarks/libuv-c/async-pingpong"}


def is_unpinned(command):
    """Whether `command` runs two threads in parallel (a program of its own,
    or a weft-bench subcommand, whatever name an --extra gives it)."""
    return command[-1] in UNPINNED_COMMANDS or command[0] in UNPINNED_COMMANDS


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--extra", action="append", default=[], help="NAME=COMMAND for more programs")
    parser.add_argument("--only", action="append", default=[], help="run only this benchmark (repeatable)")
    parser.add_argument("--cpu", default="1", help="the CPU single-threaded programs are pinned to")
    options = parser.parse_args()
    programs = PROGRAMS + [(spec.partition("=")[0], spec.partition("=")[2].split()) for spec in options.extra]
    if options.only:
        programs = [(name, command) for name, command in programs if name in options.only]
    results = {}
    for _ in range(options.reps):
        for name, command in programs:
            if not is_unpinned(command):
                command = ["taskset", "-c", options.cpu] + command
            last = subprocess.run(command, capture_output=True, text=True, timeout=600).stdout.strip().splitlines()[-1]
            fields = dict(re.findall(r"(\w+)=([\d.]+)", last))
            results.setdefault(name, []).append({k: float(v) for k, v in fields.items()})
    print("| benchmark | n | ns/op (median) | bytes/op | wall ms | runs (ns/op) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, _ in programs:
        runs = results[name]
        median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        spread = ", ".join(f"{r['ns_per_op']:.1f}" for r in runs)
        print(f"| {name} | {int(median['n'])} | {median['ns_per_op']:.1f} | {median['bytes_per_op']:.1f} | "
              f"{median['wall_ms']:.1f} | {spread} |")


if __name__ == "__main__":
    main()
