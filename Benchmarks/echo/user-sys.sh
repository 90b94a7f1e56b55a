#!/bin/bash
# Server user and kernel CPU time per echo operation, from /proc/PID/stat
# ticks over 3 s of load, for several servers run in turn REPS times; prints
# the median and range of each.
#
#   Benchmarks/echo/user-sys.sh REPS "SERVER COMMAND" ["SERVER COMMAND" ...]
#
# MODE, CONNS and SIZE (environment) choose the load (default: 64 connections
# ping-pong 64 B). Pins each server to CPU 0 and echo-load to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=$1; shift
mode=${MODE:-pingpong}; conns=${CONNS:-64}; size=${SIZE:-64}
port=7200
for rep in $(seq "$reps"); do
    for server in "$@"; do
        port=$((port + 1))
        taskset -c 0 $server --port $port > /dev/null 2>&1 &
        sleep 0.5
        pid=$(pgrep -f -- "--port $port" | head -1)
        load_out=$(mktemp)
        taskset -c 1 ../shared/tools/echo-load/echo-load -p $port -c "$conns" -s "$size" -m "$mode" -d 4 -w 1 -q > "$load_out" &
        load=$!
        sleep 1.2
        read -r user0 sys0 < <(awk '{print $14, $15}' /proc/$pid/stat)
        sleep 3
        read -r user1 sys1 < <(awk '{print $14, $15}' /proc/$pid/stat)
        wait $load
        ops=$(grep -o "ops_per_s=[0-9.]*" "$load_out" | cut -d= -f2)
        rm "$load_out"
        echo "$server|$((user1 - user0))|$((sys1 - sys0))|$ops"
        kill "$pid"; wait 2>/dev/null || true
    done
done | python3 -c '
import sys, statistics
runs = {}
for line in sys.stdin:
    server, user, kernel, ops = line.strip().split("|")
    # ticks are 10 ms; ops_per_s over the 3 s window
    per_op = lambda ticks: int(ticks) * 1e4 / (3 * float(ops))
    runs.setdefault(server, []).append((per_op(user), per_op(kernel)))
for server, values in runs.items():
    user = [v[0] for v in values]; kernel = [v[1] for v in values]
    print(f"{server}: user {statistics.median(user):.3f} µs/op ({min(user):.3f}-{max(user):.3f}), "
          f"kernel {statistics.median(kernel):.3f} µs/op ({min(kernel):.3f}-{max(kernel):.3f}), n={len(values)}")
'
