#!/usr/bin/env python3
"""Soak: weft-echo under mixed load for a bounded time, watching for growth.

One weft-echo server runs for the whole soak. Three ../shared/tools/echo-load
clients load it at once, each restarted in segments until the time is up:
64 connections ping-pong 64 B, 32 slots of connect/echo/close churn, and
16 connections streaming 16 KiB; every 4th segment the stream client is
replaced by 1,000 idle connections. The server's RSS (VmRSS) and open
descriptors are sampled every second.

The soak fails when the server dies, any echo-load run reports an error (or
exits non-zero), or the server's RSS after warm-up grows by more than 10 %:
the baseline is the median RSS of the 10 samples after warm-up, the end the
median of the last 10 samples. The warm-up must cover a full cycle of the
scenarios (4 segments, one of them idle): the 1,000 idle connections raise the
allocator's high-water mark once, and glibc keeps that memory afterwards.

Usage (from the repository root; release build first):
    swift build -c release --product weft-echo
    make -C ../shared/tools/echo-load
    Benchmarks/soak/soak.py [--secs 60] [--warmup 20] [--segment 5] [--csv FILE] [--server ".build/release/weft-echo"]

Prints the RSS/descriptor curve every 10 s and, last, one line:
    soak secs=60 warmup=10 rss_base_kib=... rss_end_kib=... growth_pct=... rss_max_kib=...
         fds_base=... fds_end=... ops=... errors=0 result=pass
"""
import argparse
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = os.path.join(ROOT, "..", "shared", "tools", "echo-load", "echo-load")

CLIENTS = {
    "pingpong": ["-m", "pingpong", "-c", "64", "-s", "64"],
    "churn": ["-m", "churn", "-c", "32", "-s", "64"],
    "stream": ["-m", "stream", "-c", "16", "-s", "16384"],
    "idle": ["-m", "idle", "-c", "1000", "-s", "64"],
}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def start_load(name, port, seconds):
    command = [LOAD, "-p", str(port), "-d", str(seconds), "-w", "0", "-q"] + CLIENTS[name]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_load(name, process):
    """Returns (ops, errors) of a finished echo-load run."""
    output, _ = process.communicate()
    last = output.strip().splitlines()[-1] if output.strip() else ""
    fields = dict(re.findall(r"(\w+)=([\d.]+)", last))
    ops = int(float(fields.get("ops", 0)))
    errors = int(float(fields.get("errors", 0)))
    if process.returncode != 0 and errors == 0:
        errors = 1
    if errors:
        print(f"  {name}: exit {process.returncode}: {last or output[-300:]}", flush=True)
    return ops, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--secs", type=int, default=60, help="total soak time (default 60)")
    parser.add_argument("--warmup", type=int, default=20, help="seconds before the RSS baseline (default 20: 4 segments)")
    parser.add_argument("--segment", type=int, default=5, help="seconds per echo-load run (default 5)")
    parser.add_argument("--csv", help="write every sample (seconds, rss KiB, descriptors) to this file")
    parser.add_argument("--server", default=".build/release/weft-echo", help="server command (default weft-echo)")
    parser.add_argument("--limit-pct", type=float, default=10.0, help="allowed RSS growth (default 10 %%)")
    options = parser.parse_args()
    if options.secs < options.warmup + 20:
        parser.error("--secs must leave at least 20 s after --warmup")

    server = subprocess.Popen(shlex.split(options.server) + ["--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline()
    match = re.search(r":(\d+)\s*$", line)
    if not match:
        server.kill()
        sys.exit(f"soak: the server did not print its address: {line!r}")
    port = int(match.group(1))

    start = time.monotonic()
    samples = []  # (seconds, rss KiB, descriptors)
    running = {}
    segment = 0
    total_ops = total_errors = 0
    died = False
    try:
        while True:
            now = time.monotonic() - start
            if server.poll() is not None:
                died = True
                print(f"soak: the server exited with status {server.returncode} at {now:.0f} s", flush=True)
                break
            left = options.secs - now
            for name, process in list(running.items()):
                if process.poll() is not None:
                    ops, errors = finish_load(name, process)
                    total_ops += ops
                    total_errors += errors
                    del running[name]
            if left > 2 and not running:
                segment += 1
                seconds = max(1, min(options.segment, int(left) - 1))
                third = "idle" if segment % 4 == 0 else "stream"
                for name in ("pingpong", "churn", third):
                    running[name] = start_load(name, port, seconds)
            if left <= 0 and not running:
                break
            samples.append((now, rss_kib(server.pid), open_descriptors(server.pid)))
            if len(samples) % 10 == 1:
                print(f"  t={now:5.0f}s rss={samples[-1][1]:7d} KiB fds={samples[-1][2]}", flush=True)
            time.sleep(1)
    finally:
        for process in running.values():
            process.kill()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()

    if options.csv:
        with open(options.csv, "w") as out:
            out.write("seconds,rss_kib,descriptors\n")
            for seconds, rss, fds in samples:
                out.write(f"{seconds:.1f},{rss},{fds}\n")
    after = [s for s in samples if s[0] >= options.warmup]
    if len(after) < 20:
        sys.exit("soak: too few samples after warm-up")
    base = statistics.median(s[1] for s in after[:10])
    end = statistics.median(s[1] for s in after[-10:])
    growth = (end / base - 1) * 100
    fds_base = statistics.median(s[2] for s in after[:10])
    fds_end = after[-1][2]
    passed = not died and total_errors == 0 and growth <= options.limit_pct and total_ops > 0
    print(f"soak secs={options.secs} warmup={options.warmup} rss_base_kib={base:.0f} rss_end_kib={end:.0f} "
          f"growth_pct={growth:.1f} rss_max_kib={max(s[1] for s in after)} fds_base={fds_base:.0f} fds_end={fds_end} "
          f"ops={total_ops} errors={total_errors} result={'pass' if passed else 'FAIL'}", flush=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
