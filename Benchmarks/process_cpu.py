"""A process's CPU time, for the benchmark scripts (echo/, dgram/)."""
import os

TICK = os.sysconf("SC_CLK_TCK")


def cpu_times(pid):
    """A process's user and system CPU seconds so far (/proc/PID/stat, 100 Hz
    ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK
