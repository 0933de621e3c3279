"""Whether the process that a run recorded still runs on this host."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether process `pid` on this host still runs (a zombie, exited but not yet reaped, is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
