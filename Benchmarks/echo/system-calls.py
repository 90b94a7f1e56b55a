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
import shlex

from compare import echo_arguments, perf_stat_counts  # Benchmarks/echo/compare.py


def main():
    parser = echo_arguments()
    parser.add_argument("--secs", type=float, default=3)
    args = parser.parse_args()
    last, operations, counts = perf_stat_counts(["raw_syscalls:sys_enter", "syscalls:sys_enter_*"],
                                                args.kind, shlex.split(args.server), args.secs, args.load)
    print(last)
    total = counts.pop("sys_enter", 0)
    counts = {name.removeprefix("sys_enter_"): count for name, count in counts.items()}
    print(f"  {total / operations:6.2f}  all system calls ({total})")
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        if count * 100 >= operations:
            print(f"  {count / operations:6.2f}  {name} ({count})")


if __name__ == "__main__":
    main()
