#!/usr/bin/env python3
"""How often an async echo server calls the parts of Swift's concurrency
runtime that take a task's status lock, per operation.

Each await that suspends goes through `swift_continuation_await`, which adds a
status record naming what the task waits on (`addStatusRecord`), removed when
the resumed job runs (`removeStatusRecord`); a task with an executor
preference reads it (`AsyncTask::getPreferredTaskExecutor`) on the resume's
enqueue and on the switch back to its executor (`swift_task_switch`); and the
record removal and preference reads each hold `withStatusRecordLock`. Every
call is counted with a uprobe (`perf stat`, exact, not sampled); the local
functions are probed at their addresses in the library's symbol table.

The server runs pinned to CPU 0 and the load pinned to CPU 1 (as in
executor-switches.py), the count covers the whole load, and is divided by the
load's operations (round trips, connections for churn, datagrams).

Usage (from the repository root; needs perf, `apt-get install -y linux-perf`):
    Benchmarks/echo/runtime-calls.py tcp|udp|unix "SERVER COMMAND" [--load "ARGS"] [--secs 3]
"""
import os
import shlex
import subprocess

from compare import echo_arguments, perf_stat_counts  # Benchmarks/echo/compare.py
from importlib import import_module

concurrency_library = import_module("executor-switches").concurrency_library

GROUP = "probe_libswift_Concurrency"
# What each probe counts: an exported function by name, or the local functions
# whose mangled names start so (every overload counted together).
FUNCTIONS = [
    ("swift_continuation_await", "swift_continuation_await"),
    ("swift_task_switch", "swift_task_switch"),
    ("addStatusRecord", "_ZN5swift15addStatusRecordE"),
    ("removeStatusRecord", "_ZN5swift18removeStatusRecordE"),
    ("getPreferredTaskExecutor", "_ZN5swift9AsyncTask24getPreferredTaskExecutorE"),
    ("withStatusRecordLock", "_ZL20withStatusRecordLockP"),
]


def add_probes(library):
    """Probes every function of FUNCTIONS; returns {event name: label}."""
    subprocess.run(["perf", "probe", "-q", "-d", f"{GROUP}:*"], capture_output=True)
    symbols = subprocess.run(["nm", library], capture_output=True, text=True, check=True).stdout.splitlines()
    events = {}
    for label, name in FUNCTIONS:
        if name.startswith("_Z"):
            addresses = [line.split()[0] for line in symbols if line.split()[-1].startswith(name)]
            if not addresses:
                raise SystemExit(f"{library} has no symbol {name}* (another Swift runtime?)")
            for address in addresses:
                subprocess.run(["perf", "probe", "-q", "-x", library, "-a", f"0x{address.lstrip('0')}"],
                               check=True, capture_output=True)
                events[f"abs_{address.lstrip('0')}"] = label
        else:
            subprocess.run(["perf", "probe", "-q", "-x", library, "-a", name], check=True, capture_output=True)
            events[name] = label
    return events


def main():
    parser = echo_arguments()
    parser.add_argument("--secs", type=float, default=3)
    args = parser.parse_args()
    command = shlex.split(args.server)
    events = add_probes(concurrency_library(os.path.realpath(command[0])))
    try:
        last, operations, counts = perf_stat_counts([f"{GROUP}:*"], args.kind, command, args.secs, args.load)
    finally:
        subprocess.run(["perf", "probe", "-q", "-d", f"{GROUP}:*"], capture_output=True)
    print(last)
    totals = {label: 0 for label, _ in FUNCTIONS}
    for event, count in counts.items():
        totals[events[event]] += count
    for label, total in totals.items():
        print(f"  {total / operations:6.2f}  {label} ({total} calls)")


if __name__ == "__main__":
    main()
