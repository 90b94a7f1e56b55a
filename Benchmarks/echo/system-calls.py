#!/usr/bin/env python3
"""The system calls an echo server makes per operation, counted.

The server runs pinned to CPU 0 and the load pinned to CPU 1 (as in
executor-switches.py); `perf stat` counts every system call entry of the
server's threads (the `syscalls:sys_enter_*` tracepoints: exact, not sampled)
over the whole load, divided by the load's operations (round trips,
connections for churn, datagrams). Calls made fewer than once per hundred
operations are left out.

Usage (from the repository root; needs perf, `apt-get install -y linux-perf`):
    Benchmarks/echo/system-calls.py tcp|udp|unix "SERVER COMMAND" [--load "ARGS"] [--secs 3]
e.g. per churned connection, C against the poll server:
    Benchmarks/echo/system-calls.py tcp Benchmarks/libuv-c/echo-server --load "-m churn -c 32 -s 64"
    Benchmarks/echo/system-calls.py tcp ".build/release/weft-echo --poll" --load "-m churn -c 32 -s 64"
"""
import os
import re
import shlex
import tempfile

from compare import echo_arguments, load_under_perf  # Benchmarks/echo/compare.py


def main():
    parser = echo_arguments()
    parser.add_argument("--secs", type=float, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        counts_file = os.path.join(directory, "stat.csv")
        last = load_under_perf(["stat", "-x,", "-o", counts_file, "-e", "raw_syscalls:sys_enter",
                                "-e", "syscalls:sys_enter_*"],
                               args.kind, shlex.split(args.server), args.secs, args.load)
        lines = open(counts_file).read().splitlines()
    print(last)
    operations = int(re.search(r"\bops=(\d+)", last).group(1))
    counts = {}
    for line in lines:
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit():
            counts[fields[2].split(":")[-1].removeprefix("sys_enter_")] = int(fields[0])
    total = counts.pop("sys_enter", 0)
    print(f"  {total / operations:6.2f}  all system calls ({total})")
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        if count * 100 >= operations:
            print(f"  {count / operations:6.2f}  {name} ({count})")


if __name__ == "__main__":
    main()
