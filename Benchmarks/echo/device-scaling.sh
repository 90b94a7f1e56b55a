#!/bin/bash
# The many-loops scaling of issue 17 on a machine with enough cores (its
# targets need 16), as one prepared run. Two steps:
#
#   Benchmarks/echo/device-scaling.sh build        # here, where Swift is: fills .device/
#   Benchmarks/echo/device-scaling.sh run [LOOPS]  # there (no Swift needed), LOOPS default 1,2,4,8
#
# `build` makes a statically linked release weft-echo (--static-swift-stdlib),
# the C baseline and echo-load, and copies them with libuv.so.1 into .device/
# (ignored by git: carry it). `run` prints scaling.py's lines for the
# ping-pong (256 connections x 64 B) and the 16 KiB stream, libuv-c first
# (the baseline of every ratio), then the spread of 1,000 connections at the
# largest loop count. Each server's loops are pinned to the first N CPUs and
# echo-load runs on the others with one thread per CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
case "${1:-}" in
build)
    swift build -c release --static-swift-stdlib --product weft-echo
    make -s -C Benchmarks/libuv-c echo-server
    make -s -C ../shared/tools/echo-load
    mkdir -p .device
    cp .build/release/weft-echo Benchmarks/libuv-c/echo-server ../shared/tools/echo-load/echo-load .device/
    cp -L "$(ldconfig -p | awk '/libuv.so.1 / {print $NF; exit}')" .device/libuv.so.1
    ls -l .device
    ;;
run)
    loops=${2:-1,2,4,8}
    export LD_LIBRARY_PATH="$PWD/.device${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    largest=${loops##*,}
    python3 Benchmarks/echo/scaling.py --loops "$loops" --reps 3 --secs 3 --load .device/echo-load \
        --server "libuv-c=.device/echo-server --threads {n}" \
        --server "weft=.device/weft-echo --loops {n}" \
        --server "weft-handoff=.device/weft-echo --loops {n} --distribution handoff"
    python3 Benchmarks/echo/scaling.py --loops "$largest" --reps 1 --secs 1 --only spread-1000 --load .device/echo-load \
        --server "libuv-c=.device/echo-server --threads {n}" \
        --server "weft=.device/weft-echo --loops {n}" \
        --server "weft-handoff=.device/weft-echo --loops {n} --distribution handoff"
    ;;
*)
    echo "usage: $0 build | run [LOOPS]" >&2
    exit 2
    ;;
esac
