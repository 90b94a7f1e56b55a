#!/usr/bin/env python3
"""Echo servers side by side: the plain-C libuv echo server and weft-echo.

For every scenario and repetition (interleaved: C, Weft, C, Weft, ...) each
server is started fresh, pinned to CPU 0, and loaded by ../shared/tools/echo-load
pinned to CPU 1. The headline figure is the server's CPU time per 1000
operations (echo-load -P); ops/s and RSS are reported beside it. Medians of the
repetitions and the Weft/C ratio are printed as a Markdown table.

With --pair A/B it also prints, per scenario, the median of the per-repetition
ratios of A's CPU per operation to B's (each repetition runs A and B minutes
apart at most, so a pair shares the machine's state; on a noisy box this is
steadier than the ratio of the two medians).

Each paired median comes with an interval of the median by order statistics and
the probability that it holds it (at least 95%, or the range of the ratios when
fewer than 6 repetitions reach none: Benchmarks/paired.py): a bound is met beyond
this box's noise only if the whole interval is under it. A repetition whose two
servers ran at rates (ops/s) more than 1.5x apart is marked with *: its two CPU
figures were measured under different loads.

A repetition fails when the load generator reports errors or exits non-zero, or
the server died before it was stopped: it is printed, counted in the errors
column, and left out of the medians and of every pair (paired by run and
repetition, never by position).

--log FILE (repeatable) reads the per-repetition lines an earlier run printed on
stderr instead of running anything, so several runs can be pooled:
    compare.py ... 2> run1.log; compare.py ... 2> run2.log
    compare.py --log run1.log --log run2.log --pair weft/weft-poll

Two regimes (--regime client|server|both, default client). Client-bound: the
load generator saturates its core first and the server is never fully busy.
Server-bound: the server runs in a cgroup (v1) whose CPU quota is half a core
(5 ms per 10 ms period) so that the server, not the client, is the bottleneck;
needs root. Server-bound scenarios are named NAME@server; every table also gives
ops per CPU-second of the server (1,000,000 / CPU ms per 1k ops).

Usage: Benchmarks/echo/compare.py [--reps 3] [--secs 5] [--only NAME] [--regime client|server|both]
       [--server weft=PATH ...] [--pair A/B ...] [--log FILE ...]
Run from the repository root after:
    swift build -c release --product weft-echo
    make -C Benchmarks/libuv-c
    make -C ../shared/tools/echo-load
SwiftNIO's echo server is a package of its own, so that Weft's users never build
SwiftNIO: `(cd Benchmarks/nio-echo && swift build -c release)`, then
`--server nio=Benchmarks/nio-echo/.build/release/nio-echo`.
"""
import argparse
import ast
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import server_cgroup  # noqa: E402  (Benchmarks/server_cgroup.py)
from process_cpu import cpu_times  # noqa: E402,F401  (Benchmarks/process_cpu.py; for user-system.py and profile-shares.py)
from paired import interval_text, pair_runs, paired_row  # noqa: E402  (Benchmarks/paired.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = os.path.join(ROOT, "..", "shared", "tools", "echo-load", "echo-load")

SCENARIOS = [
    ("pingpong-1x64", ["-m", "pingpong", "-c", "1", "-s", "64"]),
    ("pingpong-64x64", ["-m", "pingpong", "-c", "64", "-s", "64"]),
    ("stream-16x16KiB", ["-m", "stream", "-c", "16", "-s", "16384"]),
    ("churn-32", ["-m", "churn", "-c", "32", "-s", "64"]),
    ("idle-5000", ["-m", "idle", "-c", "5000", "-s", "64"]),
]


def start_server(command):
    process = subprocess.Popen(["taskset", "-c", "0"] + command + ["--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    match = re.search(r":(\d+)\s*$", line)
    if not match:
        process.kill()
        raise RuntimeError(f"{command[0]} did not print its address: {line!r}")
    return process, int(match.group(1))


DGRAM_LOAD = os.path.join(ROOT, "Benchmarks", "dgram", "dgram-load")


def start_echo(kind, command, seconds, load_arguments=None):
    """An echo server of `kind` (tcp, udp or unix) pinned to CPU 0, and the
    command of a load pinned to CPU 1 that drives it for `seconds`: echo-load
    (default: 64 connections of 64-byte ping-pong) or Benchmarks/dgram/dgram-load
    (default: one 64-byte message in flight). TCP and UDP servers get
    `--port 0`; a unix server's command names its path (`--unix PATH`). For
    profile-shares.py, and through load_under_perf for executor-switches.py and
    runtime-calls.py."""
    server = subprocess.Popen(["taskset", "-c", "0"] + command + ([] if kind == "unix" else ["--port", "0"]),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline()
    words = line.split()  # "listening on ADDRESS [(udp)|(unix)]"
    if len(words) < 3:
        server.kill()
        raise SystemExit(f"{command[0]} did not print its address: {line!r}")
    address = words[2]
    if kind == "tcp":
        load = [LOAD, "-p", address.rsplit(":", 1)[1], "-d", str(seconds), "-w", "0", "-q"]
        load += shlex.split(load_arguments or "-m pingpong -c 64 -s 64")
    else:
        load = [DGRAM_LOAD, f"--{kind}", address, "-t", str(seconds)] + shlex.split(load_arguments or "-c 1 -w 1 -s 64")
    return server, ["taskset", "-c", "1"] + load


def echo_arguments():
    """The arguments of the scripts that probe one echo server under one load
    (executor-switches.py, runtime-calls.py, profile-shares.py): KIND SERVER
    [--load ARGS]; each adds its own."""
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["tcp", "udp", "unix"])
    parser.add_argument("server")
    parser.add_argument("--load")
    return parser


def load_under_perf(perf_arguments, kind, command, seconds, load_arguments=None):
    """Starts an echo server (start_echo), attaches `perf PERF_ARGUMENTS -p
    PID` to it, and once perf had a second to attach its probes (started with
    the load, it missed about a tenth of it), runs the load; stops perf with
    SIGINT and the server. Returns the load's last line."""
    server, load = start_echo(kind, command, seconds, load_arguments)
    try:
        recorder = subprocess.Popen(["perf"] + perf_arguments + ["-p", str(server.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        result = subprocess.run(load, capture_output=True, text=True).stdout
        recorder.send_signal(signal.SIGINT)
        recorder.wait()
    finally:
        stop_server(server)
    return result.strip().splitlines()[-1]


def perf_stat_counts(events, kind, command, seconds, load_arguments=None):
    """Counts each of `events` (`perf stat -e`) on an echo server under a load
    (load_under_perf). Returns the load's last line, its operations, and the
    counts by event name without its group (`sys_enter_read`, `abs_1a2b`).
    For runtime-calls.py and system-calls.py."""
    with tempfile.TemporaryDirectory() as directory:
        counts_file = os.path.join(directory, "stat.csv")
        arguments = ["stat", "-x,", "-o", counts_file]
        for event in events:
            arguments += ["-e", event]
        last = load_under_perf(arguments, kind, command, seconds, load_arguments)
        lines = open(counts_file).read().splitlines()
    counts = {}
    for line in lines:
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit():
            name = fields[2].split(":")[-1]
            counts[name] = counts.get(name, 0) + int(fields[0])
    return last, int(re.search(r"\bops=(\d+)", last).group(1)), counts


def stop_server(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


CGROUP = None  # set by make_cgroup() in the server-bound regime
# Paired repetitions whose two rates differ by more than this are marked.
RATE_SPREAD = 1.5


def make_cgroup():
    global CGROUP
    CGROUP = server_cgroup.make_half_core_cgroup("weft-server-bound")


def run_once(command, load_arguments, seconds, regime="client"):
    process, port = start_server(command)
    try:
        if regime == "server":
            server_cgroup.move_into(CGROUP, process.pid)
        time.sleep(0.2)
        arguments = ["taskset", "-c", "1", LOAD, "-p", str(port), "-P", str(process.pid),
                     "-d", str(seconds), "-w", "1"] + load_arguments
        load = subprocess.run(arguments, capture_output=True, text=True, timeout=seconds + 60)
        died = process.poll() is not None
    finally:
        stop_server(process)
    output = load.stdout
    server_lines = [line for line in output.splitlines() if line.startswith("echo-load-server")]
    server = dict(re.findall(r"(\w+)=(-?[\d.]+)", server_lines[0])) if server_lines else {}
    last = dict(re.findall(r"(\w+)=([\w.-]+)", output.strip().splitlines()[-1])) if output.strip() else {}
    errors = int(last.get("errors", 0))
    failed = ("the server died" if died else f"echo-load exited {load.returncode}" if load.returncode != 0
              else f"{errors} errors" if errors > 0 else "no server line" if not server_lines else "")
    # Idle mode reports memory per connection and no CPU per op.
    return {
        "cpu_ms_per_1k": float(server.get("cpu_ms_per_1k_ops", "nan")),
        "ops_per_s": float(last.get("ops_per_s", 0)),
        "errors": errors,
        "rss_per_conn": float(server.get("rss_per_conn_b", "nan")),
        "failed": failed,
    }


def read_logs(paths):
    """Per-repetition results from the stderr of earlier runs, in order, each
    keyed by its file and repetition (runs before failures were recorded
    count as completed)."""
    results = {}
    servers = []
    for index, path in enumerate(paths):
        with open(path) as log:
            for line in log:
                match = re.match(r"(\S+) rep (\d+) (\S+): (\{.*\})$", line.strip())
                if not match:
                    continue
                name, repetition, server = match.group(1), int(match.group(2)), match.group(3)
                result = ast.literal_eval(match.group(4).replace("nan", "None"))
                result = {k: float("nan") if v is None else v for k, v in result.items()}
                result["key"] = (index, repetition)
                results.setdefault((name, server), []).append(result)
                if server not in servers:
                    servers.append(server)
    return results, servers


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--secs", type=int, default=5)
    parser.add_argument("--only", action="append")
    parser.add_argument("--regime", choices=["client", "server", "both"], default="client")
    parser.add_argument("--server", action="append", default=[],
                        help="NAME=COMMAND to add or replace a server (e.g. weft-async='.build/release/weft-echo --async')")
    parser.add_argument("--pair", action="append", default=[],
                        help="A/B: also print the median of the per-repetition CPU ratios of server A to server B")
    parser.add_argument("--log", action="append", default=[],
                        help="FILE: analyse the per-repetition lines of earlier runs (their stderr) instead of running")
    options = parser.parse_args()
    servers = {
        "c": [os.path.join(ROOT, "Benchmarks", "libuv-c", "echo-server")],
        "weft": [os.path.join(ROOT, ".build", "release", "weft-echo")],
    }
    for spec in options.server:
        name, _, command = spec.partition("=")
        servers[name] = command.split()
    results = {}
    if options.log:
        results, logged = read_logs(options.log)
        servers = {name: servers.get(name, []) for name in logged}
    regimes = ["client", "server"] if options.regime == "both" else [options.regime]
    if "server" in regimes and not options.log:
        make_cgroup()
    for base_name, load_arguments in SCENARIOS:
        if options.log or (options.only and base_name not in options.only):
            continue
        for regime in regimes:
            if regime == "server" and base_name.startswith("idle"):
                continue  # idle connections measure memory, in either regime
            name = base_name if regime == "client" else f"{base_name}@server"
            for rep in range(options.reps):
                for server, command in servers.items():
                    result = run_once(command, load_arguments, options.secs, regime)
                    print(f"{name} rep {rep + 1} {server}: {result}", file=sys.stderr, flush=True)
                    result["key"] = (0, rep + 1)
                    results.setdefault((name, server), []).append(result)
    scenario_names = [name + suffix for name, _ in SCENARIOS for suffix in ("", "@server")]

    names = list(servers)
    print("| scenario | " + " | ".join(f"{s} CPU ms/1k ops" for s in names) + " | "
          + " | ".join(f"{s}/c" for s in names[1:]) + " | " + " | ".join(f"{s} ops/s" for s in names)
          + " | " + " | ".join(f"{s} ops/CPU-s" for s in names)
          + " | " + " | ".join(f"{s} RSS B/conn" for s in names) + " | errors |")
    print("|" + " --- |" * (1 + 4 * len(names) + len(names) - 1 + 1))
    figures = ["cpu_ms_per_1k", "ops_per_s", "rss_per_conn"]
    for name in scenario_names:
        completed = {s: [r for r in results.get((name, s), []) if not r.get("failed")] for s in names}
        if not all(completed.values()):
            continue
        med = {s: {k: statistics.median(r[k] for r in completed[s]) for k in figures} for s in names}
        errors = sum(r["errors"] + (1 if r.get("failed") and not r["errors"] else 0)
                     for s in names for r in results[(name, s)])
        cells = [f"{med[s]['cpu_ms_per_1k']:.3f}" for s in names]
        ratios = [f"{med[s]['cpu_ms_per_1k'] / med['c']['cpu_ms_per_1k']:.2f}x" if not name.startswith("idle-5000")
                  else f"{med[s]['rss_per_conn'] / med['c']['rss_per_conn']:.2f}x (RSS)" for s in names[1:]]
        ops = [f"{med[s]['ops_per_s']:.0f}" for s in names]
        per_cpu_second = [f"{1e6 / med[s]['cpu_ms_per_1k']:.0f}" if not name.startswith("idle-5000") else "" for s in names]
        rss = [f"{med[s]['rss_per_conn']:.0f}" for s in names]
        print(f"| {name} | " + " | ".join(cells + ratios + ops + per_cpu_second + rss) + f" | {errors} |")

    flagged_rows = 0
    if options.pair:
        print()
        print("| scenario | pair | median of paired ratios | interval (coverage) | per repetition |")
        print("| --- | --- | --- | --- | --- |")
    for name in scenario_names:
        for pair in options.pair:
            a, _, b = pair.partition("/")
            if (name, a) not in results or (name, b) not in results or name.startswith("idle-5000"):
                continue
            pairs = pair_runs(results[(name, a)], results[(name, b)])
            if not pairs:
                continue
            median, low, high, coverage, paired = paired_row(pairs, "cpu_ms_per_1k")
            unlike = [max(x["ops_per_s"], y["ops_per_s"]) > RATE_SPREAD * min(x["ops_per_s"], y["ops_per_s"]) for x, y in pairs]
            flagged_rows += any(unlike)
            print(f"| {name} | {a}/{b} | {median:.2f}x | {interval_text(low, high, coverage)} | "
                  + ", ".join(f"{r:.2f}" + ("*" if odd else "") for r, odd in zip(paired, unlike)) + " |")
    if flagged_rows:
        print(f"\n\\* the two servers' rates (ops/s) differed more than {RATE_SPREAD}x in that repetition, so their CPU "
              "per operation was measured under different loads (on this box, churn's connection rate flips between "
              "about 14k and 40k per second whatever the server, in both regimes).")


if __name__ == "__main__":
    main()
