#!/usr/bin/env python3
"""Process spawn rate, Weft against plain-C libuv, interleaved.

    Benchmarks/process/compare.py [--rounds R] [-n N] [-c CONCURRENT]

Runs `weft-bench process-spawn` (release build, .build/release) and
`Benchmarks/libuv-c/process-spawn` alternately R times (each spawns /bin/true
N times with CONCURRENT children in flight and awaits every exit), then prints
each run's ns_per_op, the medians, and the ratio of the medians (Weft / C).
Build first: `swift build -c release --product weft-bench` and
`make -C Benchmarks/libuv-c process-spawn`.
"""
import argparse
import os
import re
import statistics
import subprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def run(command):
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return float(re.search(r"ns_per_op=([0-9.]+)", output).group(1)), output


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("-c", type=int, default=1)
    options = parser.parse_args()
    weft = [os.path.join(ROOT, ".build", "release", "weft-bench"), "process-spawn", "-n", str(options.n), "-c", str(options.c)]
    c = [os.path.join(ROOT, "Benchmarks", "libuv-c", "process-spawn"), "-n", str(options.n), "-c", str(options.c)]
    figures = {"weft": [], "c": []}
    for round in range(options.rounds):
        # Alternate which goes first, so a drift in the machine's load hits both.
        order = [("weft", weft), ("c", c)] if round % 2 == 0 else [("c", c), ("weft", weft)]
        for name, command in order:
            value, line = run(command)
            figures[name].append(value)
            print(line, flush=True)
    weft_median = statistics.median(figures["weft"])
    c_median = statistics.median(figures["c"])
    print(f"median ns per process: weft {weft_median:.0f}, C {c_median:.0f}; ratio {weft_median / c_median:.3f}"
          f" (n={options.n}, c={options.c}, rounds={options.rounds})")


if __name__ == "__main__":
    main()
