#!/usr/bin/env python3
"""How many executor switches an async echo server makes per operation.

Every `swift_task_switch` call (a hop to an executor after an await, or on
entry to a function that is not `nonisolated(nonsending)`) is counted with a
uprobe, and grouped by the function it resumes (its second argument, the
resume function, looked up in the server's binary). For a task that prefers a
Weft loop each switch reads that preference under the task's status lock, so
the count is a cost that CPU time on this box is too noisy to resolve, and it
is exact: the probe sees every call, not a sample.

The server runs pinned to CPU 0, the load pinned to CPU 1 for --secs seconds
(TCP: echo-load; udp and unix: Benchmarks/dgram/dgram-load), and the probe
records the server for the whole load, so the count divided by the load's
operations (round trips, connections for churn, datagrams) is per operation.

Usage (from the repository root; needs perf, `apt-get install -y linux-perf`):
    Benchmarks/echo/executor-switches.py tcp|udp|unix "SERVER COMMAND" [--load "ARGS"] [--secs 3]
TCP and UDP servers get `--port 0`; a unix server's command names its path
(`--unix PATH`). Default loads: `-m pingpong -c 64 -s 64` (TCP), `-c 1 -w 1 -s 64`.
"""
import collections
import os
import re
import shlex
import subprocess
import tempfile

from compare import echo_arguments, load_under_perf  # Benchmarks/echo/compare.py

EVENT = "probe_libswift_Concurrency:swift_task_switch"


def concurrency_library(binary):
    """The path of the libswift_Concurrency.so the server loads."""
    libraries = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(/\S*libswift_Concurrency\.so)", libraries)
    if not match:
        raise SystemExit(f"{binary} does not load libswift_Concurrency.so (linked statically?)")
    return match.group(1)


def add_probe(library):
    subprocess.run(["perf", "probe", "-q", "-d", EVENT], capture_output=True)
    # Swift's async convention: the resume function is the first integer argument.
    subprocess.run(["perf", "probe", "-q", "-x", library, "--add", "swift_task_switch resume=%di:u64"],
                   check=True, capture_output=True)


def symbolize(binary, addresses):
    """Demangled function names of `addresses` (offsets in `binary`)."""
    names = subprocess.run(["addr2line", "-f", "-e", binary] + [hex(a) for a in addresses],
                           capture_output=True, text=True, check=True).stdout.splitlines()[::2]
    return subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(names),
                          capture_output=True, text=True).stdout.splitlines()


def main():
    parser = echo_arguments()
    parser.add_argument("--secs", type=float, default=3)
    args = parser.parse_args()
    command = shlex.split(args.server)
    binary = os.path.realpath(command[0])
    add_probe(concurrency_library(binary))
    with tempfile.TemporaryDirectory() as directory:
        data = os.path.join(directory, "perf.data")
        last = load_under_perf(["record", "-q", "-e", EVENT, "-o", data], args.kind, command, args.secs, args.load)
        script = subprocess.run(["perf", "script", "-i", data, "--show-mmap-events"],
                                capture_output=True, text=True).stdout
    print(last)
    operations = int(re.search(r"\bops=(\d+)", last).group(1))
    # The executable mapping of the server's binary (offset 0: a PIE's text starts there).
    mapping = re.search(r"\[(0x[0-9a-f]+)\(0x[0-9a-f]+\) @ 0 .*r-xp " + re.escape(binary), script)
    base = int(mapping.group(1), 16) if mapping else 0
    counts = collections.Counter(int(value) for value in re.findall(r"resume=(\d+)", script))
    total = sum(counts.values())
    print(f"{total} executor switches, {total / operations:.2f} per operation")
    top = counts.most_common(12)
    for (address, count), name in zip(top, symbolize(binary, [address - base for address, _ in top])):
        print(f"  {count / operations:6.2f}  {name[:120]}")


if __name__ == "__main__":
    main()
