#!/usr/bin/env python3
"""Echo servers in the server-bound regime: each server runs in a cgroup (v1)
whose CPU quota is half a core (5 ms per 10 ms), pinned to CPU 0, so the load
generator on CPU 1 is never the bottleneck. Prints, per scenario, the median
ops/s and server CPU ms per 1k operations of each server, and the median of
the per-repetition ops/s ratios of each server to the first one (repetitions
interleaved). Needs root (the cgroup).

    Benchmarks/echo/server-bound.py --reps 9 --only pingpong-64x64 \\
        --server "before=/tmp/before-echo --poll" --server "after=.build/release/weft-echo --poll"

(Issue 18 asks for this regime inside compare.py; until then, this.)
"""
import argparse
import os
import re
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = os.path.join(ROOT, "..", "shared", "tools", "echo-load", "echo-load")
CGROUP = "/sys/fs/cgroup/cpu/weft-server-bound"
SCENARIOS = {
    "pingpong-64x64": ["-m", "pingpong", "-c", "64", "-s", "64"],
    "stream-16x16KiB": ["-m", "stream", "-c", "16", "-s", "16384"],
}


def run(command, scenario, secs):
    server = subprocess.Popen(["taskset", "-c", "0"] + command + ["--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = re.search(r":(\d+)\s*$", server.stdout.readline()).group(1)
        with open(os.path.join(CGROUP, "cgroup.procs"), "w") as procs:
            procs.write(str(server.pid))
        output = subprocess.run(["taskset", "-c", "1", LOAD, "-p", port] + SCENARIOS[scenario]
                                + ["-d", str(secs), "-w", "1", "-P", str(server.pid)],
                                capture_output=True, text=True, timeout=secs + 60).stdout
    finally:
        server.terminate()
        server.wait()
    sampled = dict(re.findall(r"(\w+)=([\d.]+)", next(l for l in output.splitlines() if l.startswith("echo-load-server"))))
    load = dict(re.findall(r"(\w+)=([\d.]+)", output.strip().splitlines()[-1]))
    return float(load["ops_per_s"]), float(sampled["cpu_ms_per_1k_ops"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--secs", type=int, default=3)
    parser.add_argument("--only", action="append")
    parser.add_argument("--server", action="append", required=True, help="NAME=COMMAND; the first is the baseline")
    options = parser.parse_args()
    servers = [(spec.partition("=")[0], spec.partition("=")[2].split()) for spec in options.server]
    os.makedirs(CGROUP, exist_ok=True)
    with open(os.path.join(CGROUP, "cpu.cfs_period_us"), "w") as period:
        period.write("10000")
    with open(os.path.join(CGROUP, "cpu.cfs_quota_us"), "w") as quota:
        quota.write("5000")
    scenarios = options.only or list(SCENARIOS)
    results = {}
    for _ in range(options.reps):
        for scenario in scenarios:
            for name, command in servers:
                results.setdefault((scenario, name), []).append(run(command, scenario, options.secs))
    baseline = servers[0][0]
    for scenario in scenarios:
        for name, _ in servers:
            runs = results[(scenario, name)]
            ratios = [run[0] / base[0] for run, base in zip(runs, results[(scenario, baseline)])]
            print(f"{scenario} {name}: ops/s {statistics.median(r[0] for r in runs):.0f}, "
                  f"CPU ms/1k ops {statistics.median(r[1] for r in runs):.2f}, "
                  f"ops/s vs {baseline} paired {statistics.median(ratios):.3f} "
                  f"({', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
