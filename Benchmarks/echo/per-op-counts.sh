#!/bin/bash
# Runtime calls per echo operation on a server under load, counted with perf
# uprobes and divided by the server's write(2) calls (one per echo).
#
#   Benchmarks/echo/per-op-counts.sh "SERVER COMMAND" PORT [MODE CONNS SIZE]
#
# Needs root (perf probe) and the release build; pins the server to CPU 0 and
# echo-load to CPU 1. Adds the probes if missing; `perf probe -d '*'` removes them.
set -euo pipefail
cd "$(dirname "$0")/../.."
server=$1; port=$2; mode=${3:-pingpong}; conns=${4:-64}; size=${5:-64}
core=/opt/swift/usr/lib/swift/linux/libswiftCore.so
concurrency=/opt/swift/usr/lib/swift/linux/libswift_Concurrency.so
libc=/lib/x86_64-linux-gnu/libc.so.6
if ! perf probe -l 2>/dev/null | grep -q swift_task_alloc; then
    perf probe -q -x $core -a swift_allocObject -a swift_retain -a swift_release
    perf probe -q -x $concurrency -a swift_task_switch -a swift_task_alloc -a swift_continuation_init
    perf probe -q -x $libc -a malloc -a __libc_write -a pthread_mutex_lock
fi
out=$(mktemp -d)
taskset -c 0 $server --port "$port" > "$out/server" 2>&1 &
sleep 0.7
pid=$(pgrep -f -- "--port $port" | head -1)
taskset -c 1 ../shared/tools/echo-load/echo-load -p "$port" -c "$conns" -s "$size" -m "$mode" -d 4 -w 1 -q > "$out/load" &
load=$!
sleep 1.5
perf stat -x, -e 'probe_libswiftCore:*,probe_libswift_Concurrency:*,probe_libc:*' -p "$pid" -- sleep 2 2> "$out/stat"
wait $load
kill "$pid"; wait 2>/dev/null || true
python3 - "$server" "$out/stat" <<'PY'
import sys
counts = {}
for line in open(sys.argv[2]):
    fields = line.strip().split(",")
    if len(fields) > 2 and fields[0].replace(".", "").isdigit():
        counts[fields[2].split(":")[1]] = float(fields[0])
writes = counts.pop("__libc_write")
print(sys.argv[1], " ".join(f"{name}={value / writes:.2f}" for name, value in counts.items()), f"writes={writes:.0f}")
PY
rm -r "$out"
