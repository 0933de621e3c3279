"""One worker per run: an exclusive claim on the run dir that dies with the process holding it.

The claim is an OS lock (flock) on `RUN_DIR/worker.lock`. The kernel drops it when the last
descriptor of that open file closes, so it goes when its worker dies, even by `kill -9`; no stale
lock is ever left to clean up.

No window between a launcher's check and a worker's hold: whoever starts a worker (`cockpit run`,
`resume`, the TUI, a sweep) takes the claim first, checks and marks the run under it, then starts
the worker with the locked descriptor inherited (`CLAIM_FD_ENV` names it) and closes its own copy.
The lock is never free between the two, so a second launcher fails to take it (and exits 2 naming
the worker) until that worker is dead. A worker started by hand (`python -m engine.worker RUN_DIR`)
takes the claim itself before it writes anything, and refuses to run without it. Under torchrun the
torchrun process holds it for the job (its ranks do not inherit descriptors).

The file holds the pid of the process that holds the claim, for the refusal message only: the lock,
not the file's text, says whether the run is claimed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from .db import StoreError

CLAIM_FILE = "worker.lock"
CLAIM_FD_ENV = "COCKPIT_CLAIM_FD"  # the inherited, locked descriptor a launcher hands its worker
RECORD_BYTES = 64  # the file's fixed size: "PID ROLE", padded
INHERIT_WAIT_S = 5.0  # how long a worker waits for its launcher to let go (emulated flock only)


class ClaimHeld(StoreError):
    """Another live process holds the run (CLI: exit 2); the message names it."""

    def __init__(self, message: str, pid: int | None):
        super().__init__(message)
        self.pid = pid


class RunClaim:
    """A held claim on one run dir: an open, flock-ed descriptor of its worker.lock."""

    def __init__(self, run_dir: Path, fd: int):
        self.run_dir, self.fd = Path(run_dir), fd

    @classmethod
    def take(cls, run_dir: Path) -> RunClaim:
        """The run's claim, or ClaimHeld naming the process that holds it (never waits)."""
        run_dir = Path(run_dir)
        try:
            fd = os.open(run_dir / CLAIM_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot claim run {run_dir.name} ({run_dir / CLAIM_FILE}: {exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreError(f"cannot claim run {run_dir.name}: {exc.strerror or exc}") from None
            pid, role = holder(run_dir)
            who = f"a live worker (pid {pid})" if pid and role == "worker" else (
                f"a worker being started by pid {pid}" if pid else "a live worker")
            raise ClaimHeld(f"run {run_dir.name} already has {who}: watch it with `cockpit attach {run_dir.name}`, "
                            "or stop it first (`cockpit stop`; a frozen one: kill it)", pid) from None
        claim = cls(run_dir, fd)
        claim.record(os.getpid(), "launcher")
        return claim

    @classmethod
    def inherited(cls, run_dir: Path, fd: int) -> RunClaim | None:
        """The claim a launcher handed down as descriptor `fd`, or None when `fd` is not this run's
        locked worker.lock (then the worker takes the claim itself)."""
        try:
            mine, there = os.fstat(fd), os.stat(Path(run_dir) / CLAIM_FILE)
        except OSError:
            return None
        if (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino):
            return None
        # the same open file: a local filesystem says yes at once. Where flock is emulated with POSIX
        # locks (NFS), the lock is the launcher's until it closes its copy, a moment after the spawn
        deadline = time.monotonic() + INHERIT_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.05)
        os.set_inheritable(fd, False)  # ends with this process: its own children never keep it
        return cls(Path(run_dir), fd)

    def record(self, pid: int, role: str = "worker") -> None:
        """Write the holder's pid and role (launcher or worker) into the file: what a refused
        launcher names."""
        record = f"{pid} {role}".ljust(RECORD_BYTES - 1).encode() + b"\n"
        try:  # one write of a fixed size over the last: a reader never sees it empty or half-cut
            os.pwrite(self.fd, record, 0)
            os.ftruncate(self.fd, RECORD_BYTES)
        except OSError:  # a full disk: the lock still holds, only the name is missing
            pass

    def release(self) -> None:
        """Close this process's descriptor (the claim ends unless a worker inherited it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def holder(run_dir: Path) -> tuple[int | None, str]:
    """(pid, role) as written by the claim's holder; (None, "") when unknown. A claim taken a moment
    ago may not have written its pid yet: wait for it briefly."""
    for _ in range(20):
        try:
            pid, _, role = (Path(run_dir) / CLAIM_FILE).read_text().strip().partition(" ")
        except (OSError, UnicodeDecodeError):
            return None, ""
        if pid.isdigit():
            return int(pid), role.strip()
        time.sleep(0.005)
    return None, ""
