#!/usr/bin/env python3
"""User and system CPU time per operation of echo servers, apart.

On this box the kernel's share of an echo server's CPU (80-90%) varies by more
than a change to Weft's user-space code can move the total, so compare.py's
ratios cannot resolve a few per cent of user time; this reads the server's
utime and stime (/proc/PID/stat, 100 Hz ticks) around a load and reports each
per operation, the servers interleaved, medians and paired ratios of user time.

Usage (from the repository root):
    Benchmarks/echo/user-system.py [--reps 5] [--secs 6] [--load "-m pingpong -c 64 -s 64"]
        --server NAME=COMMAND [--server NAME=COMMAND ...]
The first server is the baseline of the ratios. Servers run pinned to CPU 0
(`--port 0` added), echo-load to CPU 1.
"""
import argparse
import re
import shlex
import statistics
import subprocess
import sys

from compare import LOAD, cpu_times, start_server, stop_server  # Benchmarks/echo/compare.py


def run(command, load, secs):
    server, port = start_server(shlex.split(command))
    try:
        user0, system0 = cpu_times(server.pid)
        out = subprocess.run(["taskset", "-c", "1", LOAD, "-p", str(port), "-d", str(secs), "-w", "0", "-q"]
                             + shlex.split(load), capture_output=True, text=True, check=True).stdout
        user1, system1 = cpu_times(server.pid)
    finally:
        stop_server(server)
    ops = int(re.search(r" ops=(\d+)", out).group(1))
    return (user1 - user0) * 1e6 / ops, (system1 - system0) * 1e6 / ops


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--secs", type=int, default=6)
    parser.add_argument("--load", default="-m pingpong -c 64 -s 64")
    parser.add_argument("--server", action="append", required=True)
    args = parser.parse_args()
    servers = [entry.split("=", 1) for entry in args.server]
    results = {name: [] for name, _ in servers}
    for rep in range(args.reps):
        for name, command in servers:
            user, system = run(command, args.load, args.secs)
            results[name].append((user, system))
            print(f"rep {rep + 1} {name}: user {user:.3f} µs/op, system {system:.3f} µs/op", file=sys.stderr)
    base = servers[0][0]
    print(f"`{args.load}`, {args.reps} interleaved runs of {args.secs} s\n")
    print("| server | user µs/op (median) | system µs/op (median) | user / " + base + " (paired, median; each run) |")
    print("| --- | --- | --- | --- |")
    for name, _ in servers:
        users = [u for u, _ in results[name]]
        systems = [s for _, s in results[name]]
        ratios = [u / b for (u, _), (b, _) in zip(results[name], results[base])]
        each = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"| {name} | {statistics.median(users):.3f} | {statistics.median(systems):.3f} | "
              f"{statistics.median(ratios):.2f}x ({each}) |")


if __name__ == "__main__":
    main()
