"""The half-core CPU quota the server-bound regime runs servers under
(echo/compare.py and dgram/compare.py): a cgroup v1 cpu controller, 5 ms per
10 ms period, so that the server, not the load client, is the bottleneck."""
import os
import sys


def make_half_core_cgroup(name):
    """Creates (or reuses) /sys/fs/cgroup/cpu/NAME with half a core; returns
    its path. Exits with a message where there is no cgroup v1 or no root."""
    path = os.path.join("/sys/fs/cgroup/cpu", name)
    try:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "cpu.cfs_period_us"), "w") as period:
            period.write("10000")
        with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as quota:
            quota.write("5000")
    except OSError as error:
        sys.exit(f"compare.py: the server-bound regime needs a cgroup v1 cpu controller and root: {error}")
    return path


def move_into(path, pid):
    """Moves process PID into the cgroup at PATH."""
    with open(os.path.join(path, "cgroup.procs"), "w") as procs:
        procs.write(str(pid))
