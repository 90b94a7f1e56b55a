#!/usr/bin/env python3
"""weft-cat against cat, interleaved in one run (docs/BENCHMARKS.md, "Files").

    swift build -c release --product weft-cat
    Benchmarks/files/compare.py [--rounds 9] [--size-mib 1024] [--file /tmp/weft-bench-1g]

Makes the file once (random bytes), reads it once to put it in the page
cache, then runs every case once per round, in a rotated order, and prints
the median wall time, throughput and CPU (user + system, from the children's
rusage) of each, with weft-cat's throughput as a ratio of cat's in the same
setting:

  to /dev/null      the file to /dev/null (what the issue's threshold is about)
  to a file         the file to a new file in the same directory (page cache)
  to a pipe         the file into `cat > /dev/null` through a pipe

weft-cat runs with its default block (4 MiB) and, to /dev/null, with 64 KiB,
256 KiB and 1 MiB blocks (`--buffer-size`), the measurement behind the defaults.
"""
import argparse
import os
import resource
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEFT_CAT = os.path.join(ROOT, ".build", "release", "weft-cat")


def run(command, destination):
    """Runs `command` (a shell line) with stdout to `destination`; wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(destination, "wb") as out:
        start = time.perf_counter()
        subprocess.run(command, shell=True, stdout=out, check=True)
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--file", default="/tmp/weft-bench-1g")
    options = parser.parse_args()
    size = options.size_mib << 20
    if not os.path.exists(options.file) or os.path.getsize(options.file) != size:
        subprocess.run(f"head -c {size} /dev/urandom > {options.file}", shell=True, check=True)
    copy = options.file + ".copy"
    subprocess.run(f"cat {options.file} > /dev/null", shell=True, check=True)
    f = options.file
    cases = [
        ("cat to /dev/null", f"cat {f}", "/dev/null"),
        ("weft-cat to /dev/null", f"{WEFT_CAT} {f}", "/dev/null"),
        ("weft-cat --buffer-size 64 to /dev/null", f"{WEFT_CAT} --buffer-size 64 {f}", "/dev/null"),
        ("weft-cat --buffer-size 256 to /dev/null", f"{WEFT_CAT} --buffer-size 256 {f}", "/dev/null"),
        ("weft-cat --buffer-size 1024 to /dev/null", f"{WEFT_CAT} --buffer-size 1024 {f}", "/dev/null"),
        ("cat to a file", f"cat {f}", copy),
        ("weft-cat to a file", f"{WEFT_CAT} {f}", copy),
        ("cat to a pipe", f"cat {f} | cat", "/dev/null"),
        ("weft-cat to a pipe", f"{WEFT_CAT} {f} | cat", "/dev/null"),
    ]
    results = {name: [] for name, _, _ in cases}
    for round_index in range(options.rounds):
        shift = round_index % len(cases)
        for name, command, destination in cases[shift:] + cases[:shift]:
            results[name].append(run(command, destination))
    if os.path.exists(copy):
        os.unlink(copy)
    print(f"{options.rounds} rounds, {options.size_mib} MiB, medians:")
    medians = {}
    for name, _, _ in cases:
        wall = statistics.median(w for w, _ in results[name])
        cpu = statistics.median(c for _, c in results[name])
        medians[name] = wall
        print(f"  {name:42s} {wall:6.3f} s  {size / wall / 1e9:5.2f} GB/s  cpu {cpu:6.3f} s"
              f"  (min {min(w for w, _ in results[name]):.3f}, max {max(w for w, _ in results[name]):.3f})")
    for setting in ["to /dev/null", "to a file", "to a pipe"]:
        ratio = medians[f"cat {setting}"] / medians[f"weft-cat {setting}"]
        print(f"  weft-cat throughput / cat's, {setting}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
