#!/bin/bash
# Instructions a server executes per echo operation, counted by callgrind:
# unlike CPU time on this shared box, the count is the same run after run, so
# a change to the hot path shows as an exact before/after figure.
#
#   Benchmarks/echo/instructions.sh tcp|udp|unix "SERVER COMMAND" [LOAD ARGUMENTS]
#
# tcp loads the server with ../shared/tools/echo-load (default `-c 64 -s 64`,
# ping-pong; `-m churn -c 32 -s 64` counts per connection, `-m stream -c 16
# -s 16384` per 16 KiB echoed), udp and unix with Benchmarks/dgram/dgram-load
# (default `-c 1 -w 1 -s 64`; a unix server's command names its path,
# `--unix PATH`, where the others get `--port 0`),
# for 3 s, counting only while the load runs (callgrind starts with counting
# off; the server's start-up is not counted). Prints the instructions per
# operation and leaves callgrind's profile for `callgrind_annotate`.
#
# Single-threaded servers only: the C servers and `weft-echo --poll` (or
# `--udp --poll`, `--unix PATH --poll`). Valgrind 3.19, Debian 12's, stops with an internal error
# when weft-echo starts a loop thread, and cannot read the DWARF 5 debug
# information Swift writes, so the Swift binary is run from a copy without it
# (`strip -g`). Needs valgrind (`apt-get install -y valgrind`). Under
# callgrind a server runs 20-50 times slower, so it handles fewer operations
# per loop iteration than at full speed: compare counts of one load, not
# counts with CPU time.
set -euo pipefail
cd "$(dirname "$0")/../.."
kind=$1; server=$2; shift 2
out=$(mktemp -d)
binary=${server%% *}
arguments=${server#"$binary"}
strip -g -o "$out/server" "$binary"
[ "$kind" = unix ] || arguments="$arguments --port 0"
taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/callgrind.out" \
    "$out/server" $arguments > "$out/log" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q "^listening" "$out/log" && break; sleep 0.1; done
address=$(grep -m1 "^listening" "$out/log" | awk '{print $3}')
callgrind_control -i on "$pid" > /dev/null 2>&1
if [ "$kind" = tcp ]; then
    load=$(taskset -c 1 ../shared/tools/echo-load/echo-load -p "${address##*:}" ${*:--c 64 -s 64} -d 3 -w 0 -q)
    ops=$(grep -o " ops=[0-9]*" <<< "$load" | cut -d= -f2)
else
    load=$(taskset -c 1 Benchmarks/dgram/dgram-load "--$kind" "$address" ${*:--c 1 -w 1 -s 64} -t 3)
    ops=$(grep -o "ops=[0-9]*" <<< "$load" | cut -d= -f2)
fi
callgrind_control -i off "$pid" > /dev/null 2>&1
callgrind_control -d "$pid" > /dev/null 2>&1
kill "$pid"; wait "$pid" 2>/dev/null || true
total=$(callgrind_annotate "$out/callgrind.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$server: ops=$ops instructions=$total per_op=$((total / ops)) profile=$out/callgrind.out.1"
