#!/usr/bin/env python3
"""Process spawn rate, Weft against plain-C libuv, interleaved.

    Benchmarks/process/compare.py [--rounds R] [-n N] [-c CONCURRENT]

Runs `weft-bench process-spawn` (release build, .build/release) and
`Benchmarks/libuv-c/process-spawn` alternately R times (each spawns /bin/true
N times with CONCURRENT children in flight and awaits every exit), then prints
each run's ns_per_op, the medians, and the ratio of the medians (Weft / C).
With --control, a third program runs in each round: the same C binary with
the shared libraries a Swift program maps (those of weft-bench that `ldd`
lists from the Swift toolchain, libdispatch, libBlocksRuntime and libstdc++)
preloaded, so its fork copies a comparable address space: what the C figure
would be for a process the size of a Swift one.
Build first: `swift build -c release --product weft-bench` and
`make -C Benchmarks/libuv-c process-spawn`.
"""
import argparse
import os
import re
import statistics
import subprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def run(command, environment=None):
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout.strip().splitlines()[-1]
    return float(re.search(r"ns_per_op=([0-9.]+)", output).group(1)), output


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("-c", type=int, default=1)
    parser.add_argument("--control", action="store_true")
    options = parser.parse_args()
    weft = [os.path.join(ROOT, ".build", "release", "weft-bench"), "process-spawn", "-n", str(options.n), "-c", str(options.c)]
    c = [os.path.join(ROOT, "Benchmarks", "libuv-c", "process-spawn"), "-n", str(options.n), "-c", str(options.c)]
    figures = {"weft": [], "c": [], "c+swift-libs": []}
    programs = [("weft", weft, None), ("c", c, None)]
    if options.control:
        libraries = [line.split("=>")[1].split()[0] for line in
                     subprocess.run(["ldd", weft[0]], check=True, capture_output=True, text=True).stdout.splitlines()
                     if "=>" in line and re.search(r"swift|dispatch|Blocks|stdc\+\+", line)]
        programs.append(("c+swift-libs", c, dict(os.environ, LD_PRELOAD=":".join(libraries))))
    for round in range(options.rounds):
        # Rotate which goes first, so a drift in the machine's load hits all.
        shift = round % len(programs)
        for name, command, environment in programs[shift:] + programs[:shift]:
            value, line = run(command, environment)
            figures[name].append(value)
            print(f"{line}  [{name}]", flush=True)
    weft_median = statistics.median(figures["weft"])
    c_median = statistics.median(figures["c"])
    print(f"median ns per process: weft {weft_median:.0f}, C {c_median:.0f}; ratio {weft_median / c_median:.3f}"
          f" (n={options.n}, c={options.c}, rounds={options.rounds})")
    if options.control:
        control = statistics.median(figures["c+swift-libs"])
        print(f"control: C with the Swift libraries preloaded {control:.0f}; weft / control {weft_median / control:.3f}")


if __name__ == "__main__":
    main()
