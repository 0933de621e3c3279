"""Whether the process that a run recorded still runs on this host, and is still that process.

A pid alone is not an identity: after a reboot (or enough processes) the number names another
process. So a run records the pid with its start token (`process_start`), and a live pid whose
token differs is not the run's worker."""

from __future__ import annotations

import os
import sys


def process_start(pid: int) -> str | None:
    """An opaque token of when process `pid` started, the same every time it is read for that
    process and different for any later process with the same pid; None when there is no such
    process (or it cannot be read). Linux: the boot id and the start time in clock ticks since boot
    (/proc/PID/stat field 22); elsewhere psutil's creation time."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ticks = f.read().rsplit(")", 1)[1].split()[19]  # field 22: fields after the name start at 3
            with open("/proc/sys/kernel/random/boot_id") as f:
                boot = f.read().strip()
        except (OSError, IndexError):
            return None
        return f"{boot}:{ticks}"
    try:
        import psutil

        return f"{psutil.Process(pid).create_time():.3f}"
    except Exception:  # no such process, access denied, no psutil
        return None


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether process `pid` on this host still runs (a zombie, exited but not yet reaped, is gone);
    with `start` (a token from `process_start`), also that it is the same process, not a later one
    that was given the same pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except OSError:
        pass
    if start:
        now = process_start(pid)
        return now is None or now == start
    return True
