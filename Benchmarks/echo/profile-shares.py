#!/usr/bin/env python3
"""Where an echo server's CPU samples go: the share of them in given symbols.

Starts the server pinned to CPU 0, loads it pinned to CPU 1 (TCP: echo-load;
udp and unix: Benchmarks/dgram/dgram-load), records 5 s of call stacks in the
middle of an 8 s load (`perf record -g -F 4999`, cpu-clock: this box has no
hardware counters), and prints the share of all samples that are user space,
and for each --leaf REGEX the share whose innermost frame matches it, with the
functions that called it most. Shares of one profile are steadier than CPU
time on this box; compare shares of two builds under the same load.

--by-object also prints each object's (the kernel, the binary, each shared
library) share of the samples and what that share is of the server's CPU time
per operation over the whole load (`/proc/PID/stat`, divided by the load's
operations): how two servers' CPU per operation differ, object by object.

Usage (from the repository root):
    Benchmarks/echo/profile-shares.py tcp|udp|unix "SERVER COMMAND" [--load "ARGS"]
        [--leaf 'swift_retain|swift_release' ...] [--by-object]
TCP and UDP servers get `--port 0`; a unix server's command names its path
(`--unix PATH`). Default loads: `-m pingpong -c 64 -s 64` (TCP), `-c 1 -w 1 -s 64`.
Needs perf (`apt-get install -y linux-perf`).
"""
import collections
import os
import re
import shlex
import subprocess
import tempfile
import time

from compare import cpu_times, echo_arguments, start_echo, stop_server  # Benchmarks/echo/compare.py
FRAME = re.compile(r"\s*[0-9a-f]+ (.*?)(?:\+0x[0-9a-f]+)? \((.*)\)$")


def stacks(script):
    """(symbol, object) frames of each sample, innermost first."""
    current = None
    for line in script.splitlines():
        if not line.strip():
            if current:
                yield current
            current = None
        elif not line[0].isspace():
            current = []
        elif current is not None and (match := FRAME.match(line)):
            current.append((match.group(1), match.group(2)))
    if current:
        yield current


def main():
    parser = echo_arguments()
    parser.add_argument("--leaf", action="append", default=[])
    parser.add_argument("--by-object", action="store_true")
    args = parser.parse_args()
    server, load = start_echo(args.kind, shlex.split(args.server), 8, args.load)
    with tempfile.TemporaryDirectory() as directory:
        try:
            cpu_before = sum(cpu_times(server.pid))
            loader = subprocess.Popen(load, stdout=subprocess.PIPE, text=True)
            time.sleep(2)
            data = os.path.join(directory, "perf.data")
            subprocess.run(["perf", "record", "-g", "-F", "4999", "-p", str(server.pid), "-o", data, "--", "sleep", "5"],
                           check=True, capture_output=True)
            last = loader.communicate()[0].strip().splitlines()[-1]
            cpu = sum(cpu_times(server.pid)) - cpu_before
            print(last)
            script = subprocess.run(["perf", "script", "-i", data], capture_output=True, text=True).stdout
        finally:
            stop_server(server)
    samples = list(stacks(script))
    user = sum(1 for stack in samples if stack and "[kernel" not in stack[0][1])
    print(f"{len(samples)} samples, user space {100 * user / len(samples):.1f}%")
    if args.by_object:
        ns_per_operation = cpu * 1e9 / int(re.search(r"\bops=(\d+)", last).group(1))
        print(f"server CPU {ns_per_operation:.0f} ns per operation")
        objects = collections.Counter(os.path.basename(stack[0][1]) for stack in samples if stack)
        for name, count in objects.most_common():
            share = count / len(samples)
            if share >= 0.001:
                print(f"    {100 * share:5.1f}%  {share * ns_per_operation:6.0f} ns  {name}")
    for pattern in args.leaf:
        callers = collections.Counter(stack[1][0] if len(stack) > 1 else "?"
                                      for stack in samples if stack and re.fullmatch(pattern, stack[0][0]))
        hits = sum(callers.values())
        print(f"leaf {pattern}: {hits} samples, {100 * hits / len(samples):.2f}%")
        for caller, count in callers.most_common(6):
            print(f"    {count:6d}  from {caller[:110]}")


if __name__ == "__main__":
    main()
