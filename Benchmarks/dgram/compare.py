#!/usr/bin/env python3
"""UDP and Unix-socket echo servers side by side: the plain-C libuv servers
(Benchmarks/libuv-c/udp-echo-server, pipe-echo-server) and weft-echo --udp /
--unix, loaded by Benchmarks/dgram/dgram-load.

For every scenario and repetition (interleaved: C, Weft, C, Weft, ...) each
server is started fresh, pinned to CPU 0, and loaded by dgram-load pinned to
CPU 1 for --secs seconds. Reported per run: round trips per second and the
server's CPU time (user + system, from /proc/PID/stat) per 1000 round trips.
A third server runs too: `weft-echo --udp --poll` (or `--unix PATH --poll`), the
same echo as hand-written poll futures on a Runtime (no Swift concurrency), to
show what the async bridge costs. Prints the medians of the repetitions and the Weft/C ratio of the medians as a
Markdown table, then each Weft server's paired ratio to C (the median of the
per-repetition ratios, with an interval of that median and its coverage:
Benchmarks/paired.py); each run's line goes to stderr. A run fails when its
server died before it was stopped or echoed nothing: it is printed and left out
of the medians and of every pair (paired by file and repetition, not position).

Two regimes, as Benchmarks/echo/compare.py: client-bound (the default: the load
client saturates its core first, so a slower server also pays for waking an idle
client in its sendmsg) and --regime server, where the server runs in a cgroup (v1,
root) with half a core (5 ms per 10 ms) so that the server is the bottleneck;
--regime both runs every scenario in both, named NAME and NAME@server.

Usage: Benchmarks/dgram/compare.py [--reps 3] [--secs 5] [--only NAME] [--regime client|server|both]
                                   [--build NAME=PATH]... [--poll-build NAME=PATH]... [--pair A/B]...
       Benchmarks/dgram/compare.py --log FILE [--log FILE]... [--only NAME] [--pair A/B]...
With --log it runs nothing: it reads the per-run lines earlier runs wrote to
stderr and prints the tables of all of them pooled (a repetition of each server
in a file is paired with the same repetition of the others in that file).
Run from the repository root after:
    swift build -c release --product weft-echo
    make -C Benchmarks/libuv-c udp-echo-server pipe-echo-server
    make -C Benchmarks/dgram
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import server_cgroup  # noqa: E402  (Benchmarks/server_cgroup.py)
from paired import interval_text, pair_runs, paired_row  # noqa: E402  (Benchmarks/paired.py)
from process_cpu import cpu_times  # noqa: E402  (Benchmarks/process_cpu.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = os.path.join(ROOT, "Benchmarks", "dgram", "dgram-load")
C_UDP = os.path.join(ROOT, "Benchmarks", "libuv-c", "udp-echo-server")
C_PIPE = os.path.join(ROOT, "Benchmarks", "libuv-c", "pipe-echo-server")
WEFT = os.path.join(ROOT, ".build", "release", "weft-echo")
CGROUP = None  # set by make_cgroup() in the server-bound regime


def make_cgroup():
    global CGROUP
    CGROUP = server_cgroup.make_half_core_cgroup("weft-dgram-server")

# name, kind, dgram-load arguments
SCENARIOS = [
    ("udp-1x1x64", "udp", ["-c", "1", "-w", "1", "-s", "64"]),
    ("udp-4x8x64", "udp", ["-c", "4", "-w", "8", "-s", "64"]),
    ("udp-4x8x1200", "udp", ["-c", "4", "-w", "8", "-s", "1200"]),
    ("unix-1x1x64", "unix", ["-c", "1", "-w", "1", "-s", "64"]),
    ("unix-16x4x64", "unix", ["-c", "16", "-w", "4", "-s", "64"]),
]


def servers(kind, path, builds=(), poll_builds=()):
    """The servers of one scenario; `builds` are (name, weft-echo binary) pairs
    run as more async Weft servers (another build to compare with), and
    `poll_builds` pairs run as more `--poll` servers."""
    if kind == "udp":
        return ([("c", [C_UDP, "--port", "0"]), ("weft", [WEFT, "--udp", "--port", "0", "--loops", "1"]),
                 ("weft-poll", [WEFT, "--udp", "--poll", "--port", "0"])]
                + [(name, [binary, "--udp", "--port", "0", "--loops", "1"]) for name, binary in builds]
                + [(name, [binary, "--udp", "--poll", "--port", "0"]) for name, binary in poll_builds])
    return ([("c", [C_PIPE, "--unix", path]), ("weft", [WEFT, "--unix", path]),
             ("weft-poll", [WEFT, "--unix", path, "--poll"])]
            + [(name, [binary, "--unix", path]) for name, binary in builds]
            + [(name, [binary, "--unix", path, "--poll"]) for name, binary in poll_builds])


def run_once(command, kind, load_arguments, seconds, regime):
    server = subprocess.Popen(["taskset", "-c", "0"] + command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        if regime == "server":
            server_cgroup.move_into(CGROUP, server.pid)
        line = server.stdout.readline().strip()
        match = re.match(r"listening on (\S+) \((udp|unix)\)", line)
        if not match:
            raise RuntimeError(f"unexpected first line from {command[0]}: {line!r}")
        target = ["--udp", match.group(1)] if kind == "udp" else ["--unix", match.group(1)]
        time.sleep(0.2)
        before = sum(cpu_times(server.pid))
        load = subprocess.run(["taskset", "-c", "1", LOAD] + target + load_arguments + ["-t", str(seconds)],
                              capture_output=True, text=True, check=True)
        after = sum(cpu_times(server.pid))
        died = server.poll() is not None
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    values = dict(part.split("=") for part in load.stdout.split())
    ops = int(values["ops"])
    # dgram-load ignores ECONNREFUSED, so a dead UDP server ran "successfully".
    failed = "the server died" if died else "nothing echoed" if ops == 0 else ""
    return {
        "ops_per_sec": float(values["ops_per_sec"]),
        "cpu_ms_per_1k": (after - before) * 1e6 / ops if ops else float("nan"),
        "lost": int(values["lost"]),
        "failed": failed,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--secs", type=float, default=5)
    parser.add_argument("--only")
    parser.add_argument("--regime", choices=["client", "server", "both"], default="client")
    parser.add_argument("--build", action="append", default=[],
                        help="NAME=PATH: also run the weft-echo binary at PATH (async), e.g. the build before a change")
    parser.add_argument("--poll-build", action="append", default=[],
                        help="NAME=PATH: also run the weft-echo binary at PATH with --poll")
    parser.add_argument("--pair", action="append", default=[],
                        help="A/B: also print the paired ratio of server A to server B (e.g. weft/base)")
    parser.add_argument("--log", action="append", default=[],
                        help="FILE: pool the runs an earlier run wrote to stderr instead of running (repeatable)")
    arguments = parser.parse_args()
    if arguments.log:
        results, names = read_logs(arguments.log, arguments.only)
        servers_seen = list(dict.fromkeys(server for _, server in results))
        print_tables(results, names, [server for server in servers_seen if server != "c"], arguments.pair)
        return
    builds = [tuple(spec.split("=", 1)) for spec in arguments.build]
    poll_builds = [tuple(spec.split("=", 1)) for spec in arguments.poll_build]
    regimes = ["client", "server"] if arguments.regime == "both" else [arguments.regime]
    if "server" in regimes:
        make_cgroup()
    directory = tempfile.mkdtemp(prefix="weft-dgram-")
    results = {}
    names = []
    for name, kind, load_arguments in SCENARIOS:
        if arguments.only and arguments.only not in name:
            continue
        for regime in regimes:
            label = name if regime == "client" else f"{name}@server"
            names.append(label)
            for repetition in range(arguments.reps):
                for server, command in servers(kind, os.path.join(directory, "echo.sock"), builds, poll_builds):
                    result = run_once(command, kind, load_arguments, arguments.secs, regime)
                    result["key"] = (0, repetition)
                    results.setdefault((label, server), []).append(result)
                    print(f"{label} {server} rep={repetition} ops/s={result['ops_per_sec']:.0f} "
                          f"cpu_ms/1k={result['cpu_ms_per_1k']:.2f} lost={result['lost']}"
                          + (f" failed={result['failed'].replace(' ', '_')}" if result["failed"] else ""),
                          file=sys.stderr, flush=True)
    print_tables(results, names, ["weft", "weft-poll"] + [name for name, _ in builds + poll_builds], arguments.pair)


RUN_LINE = re.compile(r"(\S+) (\S+) rep=(\d+) ops/s=(\S+) cpu_ms/1k=(\S+) lost=(\d+)(?: failed=(\S+))?$")


def read_logs(paths, only):
    """The results of the runs whose lines `paths` hold, and their scenarios in order."""
    results = {}
    names = []
    for index, path in enumerate(paths):
        with open(path) as f:
            for line in f:
                match = RUN_LINE.match(line.strip())
                if not match:
                    continue
                label, server, repetition, ops, cpu, lost, failed = match.groups()
                if only and only not in label:
                    continue
                if label not in names:
                    names.append(label)
                results.setdefault((label, server), []).append(
                    {"ops_per_sec": float(ops), "cpu_ms_per_1k": float(cpu), "lost": int(lost),
                     "failed": (failed or "").replace("_", " "), "key": (index, int(repetition))})
    return results, names


def print_tables(results, names, weft_servers, pairs):
    """The medians' table and the paired ratios' table."""
    print("| scenario | server | round trips/s (median) | server CPU ms per 1k (median) | lost | failed runs | Weft/C CPU per op |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        completed = {server: [run for run in results.get((name, server), []) if not run["failed"]]
                     for server in ["c"] + weft_servers}
        if not completed["c"]:
            continue
        c_median = statistics.median(run["cpu_ms_per_1k"] for run in completed["c"])
        for server in ["c"] + weft_servers:
            runs = completed[server]
            if not runs:
                continue
            failures = len(results[(name, server)]) - len(runs)
            median = statistics.median(run["cpu_ms_per_1k"] for run in runs)
            ratio = f"{median / c_median:.2f}x" if server != "c" and c_median > 0 else ""
            print(f"| {name} | {server} | {statistics.median(run['ops_per_sec'] for run in runs):.0f} | "
                  f"{median:.2f} | {sum(run['lost'] for run in runs)} | {failures} | {ratio} |")
    print()
    print("| scenario | pair | median of paired ratios | interval (coverage) | per repetition |")
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        for server in weft_servers:
            if (name, server) not in results:
                continue
            print_paired(name, server, "c", results)
        for pair in pairs:
            first, second = pair.split("/", 1)
            if second == "c" and first in weft_servers:
                continue  # printed above
            if (name, first) in results and (name, second) in results:
                print_paired(name, first, second, results)


def print_paired(name, server, baseline, results):
    """The row of the paired ratios of `server`'s CPU per operation to `baseline`'s."""
    pairs = pair_runs(results[(name, server)], results[(name, baseline)])
    if not pairs:
        return
    median, low, high, coverage, ratios = paired_row(pairs, "cpu_ms_per_1k")
    print(f"| {name} | {server}/{baseline} | {median:.2f}x | {interval_text(low, high, coverage)} | "
          + ", ".join(f"{ratio:.2f}" for ratio in ratios) + " |")


if __name__ == "__main__":
    main()
