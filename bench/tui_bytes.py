"""Benchmark: how many bytes a live dashboard sends to the terminal per second (what crosses an SSH
link), at each refresh rate, with charts (120x36) and with the compact panels (119x36).

    .venv/bin/python bench/tui_bytes.py [--seconds 15] [--rounds 2] [--rates 0.4,2,5]

A real worker trains a long synthetic run (tiny net, one thread) in a temporary runs dir; for each
configuration `cockpit --refresh RATE` opens on it in a pseudo-terminal of that size, is left to
paint and attach for a few seconds, then every byte it writes is counted for `--seconds`. The
configurations run in rotation, `--rounds` times, so a busy machine slows them alike; the table
gives the median KB/s of each and its ratio to the fastest rate's.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTLE_S = 6.0  # the TUI starts, attaches and draws its first frames (not counted)


def count_bytes(runs_dir: Path, cols: int, rows: int, rate: float, seconds: float) -> int:
    """Bytes the TUI writes in `seconds` after settling, in a pty of cols x rows."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
    pid, fd = pty.fork()
    if pid == 0:  # the child: the TUI on the pty, sized first
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.chdir(ROOT)
        os.execvpe(sys.executable, [sys.executable, "-m", "cockpit.cli", "--runs-dir", str(runs_dir),
                                    "--refresh", str(rate)], env)
    counted, start = 0, time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if now - start > SETTLE_S + seconds:
                break
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if now - start >= SETTLE_S:
                    counted += len(data)
    finally:
        os.write(fd, b"q")
        time.sleep(1.0)
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return counted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rates", default="0.4,2,5")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    configs = [(120, 36, r) for r in rates] + [(119, 36, rates[0])]
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        cli = [sys.executable, "-m", "cockpit.cli", "--runs-dir", str(runs_dir)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        subprocess.run(cli + ["run", "--detach", "--set", "train.epochs=10000", "--set", "train.threads=1",
                              "--set", "name=bytes"], check=True, cwd=ROOT, env=env, capture_output=True)
        time.sleep(8.0)  # past the worker's start-up: windows are being written
        results: dict[tuple, list[float]] = {c: [] for c in configs}
        try:
            for _ in range(args.rounds):
                for cols, rows, rate in configs:
                    kb_s = count_bytes(runs_dir, cols, rows, rate, args.seconds) / args.seconds / 1000
                    results[(cols, rows, rate)].append(kb_s)
                    print(f"  {cols}x{rows} --refresh {rate:g}: {kb_s:.1f} KB/s", flush=True)
        finally:
            subprocess.run(cli + ["stop", "last"], cwd=ROOT, env=env, capture_output=True)
    base = statistics.median(results[configs[0]])
    print(f"\n{'terminal':<10}{'layout':<9}{'refresh':>8}{'KB/s':>8}{'ratio':>8}")
    for (cols, rows, rate), vals in results.items():
        med = statistics.median(vals)
        layout = "charts" if cols >= 120 else "compact"
        print(f"{cols}x{rows:<6}{layout:<9}{rate:>7g}s{med:>8.1f}{med / base if base else 0:>8.2f}")


if __name__ == "__main__":
    main()
