#!/usr/bin/env python3
"""The frame size of every async function of a binary: what a caller
allocates on its task's stack (Swift's task allocator) to call it.

Each async function has an "async function pointer" (mangled suffix `Tu`):
a 32-bit relative offset to the function, then the 32-bit size of its
context, the frame the caller allocates. Frames live across a suspension
take an idle task's stack slabs (docs/BENCHMARKS.md, "Idle connections:
what each one holds").

Usage: Benchmarks/frame-sizes.py BINARY [REGEX]   # e.g. .build/release/weft-echo 'TCPStream|serve'
Prints "bytes  function" for the functions whose demangled name matches.
"""
import re
import subprocess
import sys


def sections(binary):
    """(address, file offset, size) of each section."""
    found = []
    for line in subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        match = re.match(r"\s*\[\s*\d+\]\s+\S+\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if match:
            found.append(tuple(int(field, 16) for field in match.groups()))
    return found


def main():
    binary = sys.argv[1]
    pattern = re.compile(sys.argv[2]) if len(sys.argv) > 2 else None
    data = open(binary, "rb").read()
    symbols = []
    for line in subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2].endswith("Tu"):
            symbols.append((int(fields[0], 16), fields[2]))
    names = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(name for _, name in symbols),
                           capture_output=True, text=True, check=True).stdout.splitlines()
    rows = []
    table = sections(binary)
    for (address, _), name in zip(symbols, names):
        name = name.removeprefix("async function pointer to ")
        if pattern and not pattern.search(name):
            continue
        for start, offset, size in table:
            if start <= address < start + size:
                at = offset + address - start
                rows.append((int.from_bytes(data[at + 4:at + 8], "little"), name))
                break
    for size, name in sorted(rows, key=lambda row: row[1]):
        print(f"{size:6d}  {name}")


if __name__ == "__main__":
    main()
