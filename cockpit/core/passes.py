"""A finishing pass (calibrate, TTA) on a run with no worker, run in a child process so that the
viewer that asked for it never imports torch: `python -m cockpit.cli <pass> RUN_DIR`. The child
stores its result in the run store like the CLI does; the viewer reads it from there."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class PassOutcome:
    """How a pass process ended: ok, what it said last (the reason when it failed), how long it took."""

    kind: str
    ok: bool
    message: str
    seconds: float


def pass_command(kind: str, run_path: Path) -> list[str]:
    return [sys.executable, "-m", "cockpit.cli", kind, str(run_path)]


@dataclass
class PassProcess:
    """A pass running in its own process; its output goes to a temporary file (no pipe to fill)."""

    kind: str
    proc: subprocess.Popen
    output: IO[str]
    started: float

    def poll(self) -> PassOutcome | None:
        """None while it runs; then how it ended (its last line of output is the reason when it failed)."""
        if self.proc.poll() is None:
            return None
        took = time.monotonic() - self.started
        self.output.seek(0)
        text = self.output.read()
        self.output.close()
        if self.proc.returncode == 0:
            return PassOutcome(self.kind, True, f"done in {took:.1f} s", took)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        reason = lines[-1].removeprefix("error:").strip() if lines else f"exit code {self.proc.returncode}"
        return PassOutcome(self.kind, False, reason, took)


def start_pass(kind: str, run_path: Path) -> PassProcess:
    """Start the pass in its own session (it finishes and stores its result even if the viewer quits)."""
    env = dict(os.environ, NO_COLOR="1", COLUMNS="100", TERM="dumb")
    output = tempfile.TemporaryFile("w+", encoding="utf-8")
    proc = subprocess.Popen(pass_command(kind, run_path), stdout=output, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
    return PassProcess(kind, proc, output, time.monotonic())
