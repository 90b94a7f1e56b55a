#!/usr/bin/env python3
"""Many-loops scaling of echo servers: for each loop count N, each server runs
with N loops pinned to N CPUs and the shared load generator (echo-load) runs
on the other CPUs with -t client threads. Prints one line per server, scenario
and N (medians over the repetitions, interleaved):

    scaling server=NAME scenario=S loops=N ops_per_s=X srv_cpu_ms_per_1k=Y conns_per_loop=a,b,... ratio_vs_BASE=R

`ratio_vs_BASE` is the median of the per-repetition ops/s ratios of the server
to the first server (the baseline, measured in the same run).
`conns_per_loop` is how the connections of the last repetition spread over the
loops (the server prints a `conns_per_loop=` line when it stops on SIGTERM).

Each server command has `{n}` where the loop count goes:

    Benchmarks/echo/scaling.py --loops 1,2 --reps 5 \\
        --server "libuv-c=Benchmarks/libuv-c/echo-server --threads {n}" \\
        --server "weft=.build/release/weft-echo --loops {n}"

On a machine with fewer than N + 1 CPUs the server and the clients share CPUs
(the line then says `shared_cpus=1`): throughput there is not a scaling
figure, only CPU per operation and correctness are.

`--only spread-1000` opens 1,000 connections (a short ping-pong) and reports
only how they spread over the loops.
"""
import argparse
import os
import re
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = os.path.join(ROOT, "..", "shared", "tools", "echo-load", "echo-load")
SCENARIOS = {
    "pingpong-256x64": ["-m", "pingpong", "-c", "256", "-s", "64"],
    "stream-256x16KiB": ["-m", "stream", "-c", "256", "-s", "16384"],
    "spread-1000": ["-m", "pingpong", "-c", "1000", "-s", "64"],
}


def cpus():
    return sorted(os.sched_getaffinity(0))


def run(command, n, scenario, secs, client_threads, load=LOAD):
    allowed = cpus()
    server_cpus = allowed[:n]
    client_cpus = allowed[n:] or allowed
    shared = not allowed[n:]
    argv = [part.replace("{n}", str(n)) for part in command]
    server = subprocess.Popen(["taskset", "-c", ",".join(map(str, server_cpus))] + argv + ["--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = re.search(r":(\d+)\s*$", server.stdout.readline()).group(1)
        threads = client_threads or len(client_cpus)
        output = subprocess.run(["taskset", "-c", ",".join(map(str, client_cpus)), load, "-p", port]
                                + SCENARIOS[scenario] + ["-t", str(threads), "-d", str(secs), "-w", "1",
                                                         "-P", str(server.pid)],
                                capture_output=True, text=True, timeout=secs + 60).stdout
    finally:
        server.terminate()
        rest, _ = server.communicate(timeout=30)
    spread = re.search(r"conns_per_loop=([\d,]+)", rest)
    sampled = dict(re.findall(r"(\w+)=([\d.]+)", next(l for l in output.splitlines() if l.startswith("echo-load-server"))))
    load = dict(re.findall(r"(\w+)=([\d.]+)", output.strip().splitlines()[-1]))
    return (float(load["ops_per_s"]), float(sampled["cpu_ms_per_1k_ops"]),
            spread.group(1) if spread else "?", shared)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--loops", default="1,2", help="comma-separated loop counts")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--secs", type=int, default=3)
    parser.add_argument("--client-threads", type=int, default=0, help="echo-load -t (default: one per client CPU)")
    parser.add_argument("--only", action="append")
    parser.add_argument("--load", default=LOAD, help="the echo-load binary")
    parser.add_argument("--server", action="append", required=True, help="NAME=COMMAND with {n}; the first is the baseline")
    options = parser.parse_args()
    servers = [(spec.partition("=")[0], spec.partition("=")[2].split()) for spec in options.server]
    scenarios = options.only or ["pingpong-256x64", "stream-256x16KiB"]
    base = servers[0][0]
    for scenario in scenarios:
        for n in [int(x) for x in options.loops.split(",")]:
            results = {name: [] for name, _ in servers}
            for _ in range(options.reps):
                for name, command in servers:
                    results[name].append(run(command, n, scenario, options.secs, options.client_threads, options.load))
            for name, _ in servers:
                runs = results[name]
                ratios = [r[0] / b[0] for r, b in zip(runs, results[base])]
                line = (f"scaling server={name} scenario={scenario} loops={n} "
                        f"ops_per_s={statistics.median(r[0] for r in runs):.0f} "
                        f"srv_cpu_ms_per_1k={statistics.median(r[1] for r in runs):.3f} "
                        f"conns_per_loop={runs[-1][2]} ratio_vs_{base}={statistics.median(ratios):.3f}")
                if runs[-1][3]:
                    line += " shared_cpus=1"
                print(line, flush=True)


if __name__ == "__main__":
    main()
