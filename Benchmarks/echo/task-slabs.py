#!/usr/bin/env python3
"""How many task-allocator slabs an idle async connection holds.

Every Swift task keeps its async frames in slabs of about 1 KiB that the
runtime mallocs as the task's stack grows past the slabs it has, and keeps
until the task ends (`StackAllocator`: a slab once needed stays). An idle
connection of the async echo holds its task, and so every slab that task ever
needed: its deepest stack, not only the frames live while it waits. So one
frame too many on any connection's path (the first read, the echo's write)
costs every idle connection another kilobyte (docs/BENCHMARKS.md, "Idle
connections: what each one holds").

Counts the slab mallocs (malloc calls of the slab's size, a uprobe on libc's
malloc with a `perf stat` filter, exact) of one server while `echo-load -m
idle` opens N connections that each echo once, for two values of N, and
prints the slope: slabs per connection, whatever the server allocates once.

Usage (from the repository root; needs perf, `apt-get install -y linux-perf`):
    Benchmarks/echo/task-slabs.py [".build/release/weft-echo --loops 1"] [--connections 100,600]
"""
import argparse
import os
import re
import shlex
import subprocess
import tempfile

from compare import load_under_perf  # Benchmarks/echo/compare.py

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
EVENT = "probe_libc:slab_malloc"
# 1024 - 8: the slab's size on this runtime (SlabCapacity plus the slab header).
SLAB_BYTES = 1016


def slab_mallocs(command, connections):
    """Slab-sized mallocs of the server while `connections` idle connections open."""
    with tempfile.TemporaryDirectory() as directory:
        counts_file = os.path.join(directory, "stat.csv")
        arguments = ["stat", "-x,", "-o", counts_file, "-e", EVENT, "--filter", f"size == {SLAB_BYTES}"]
        last = load_under_perf(arguments, "tcp", command, 1, f"-m idle -c {connections} -s 64")
        counts = [line.split(",") for line in open(counts_file).read().splitlines()]
    opened = int(re.search(r"\bops=(\d+)", last).group(1))
    if opened != connections:
        raise SystemExit(f"only {opened} of {connections} connections opened: {last}")
    return sum(int(fields[0]) for fields in counts if len(fields) > 2 and fields[0].isdigit())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("server", nargs="?", default=".build/release/weft-echo --loops 1")
    parser.add_argument("--connections", default="100,600", help="the two connection counts, FEW,MANY")
    args = parser.parse_args()
    few, many = (int(count) for count in args.connections.split(","))
    command = shlex.split(args.server)
    subprocess.run(["perf", "probe", "-q", "-d", EVENT], capture_output=True)
    subprocess.run(["perf", "probe", "-q", "-x", LIBC, "-a", "slab_malloc=malloc size=%di:u64"],
                   check=True, capture_output=True)
    try:
        counts = {count: slab_mallocs(command, count) for count in (few, many)}
    finally:
        subprocess.run(["perf", "probe", "-q", "-d", EVENT], capture_output=True)
    for count, mallocs in counts.items():
        print(f"  {count} idle connections: {mallocs} slab mallocs")
    print(f"slabs per idle connection: {(counts[many] - counts[few]) / (many - few):.2f}")


if __name__ == "__main__":
    main()
