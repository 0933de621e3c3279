"""Benchmark: how fast `cockpit` paints the spec editor, as a person sees it in tmux at 80x24.

    .venv/bin/python bench/tui_startup.py [--runs N] [--importtime] [--cockpit PATH] [--against SRC] [--past-runs N]

Each run starts `cockpit` (no arguments: the TUI, the spec editor on quickstart, an empty runs dir)
in a new detached tmux session of 80x24 and polls the screen (`tmux capture-pane`) every 5 ms until
the editor is painted whole: its status line ("✓ valid") and the key footer ("^r Launch"). The time
is from just before `tmux new-session` to that screen. The same is measured for a shell that prints
one line (tmux's own start), and subtracted. The first run is the coldest this script can make
(files already in the page cache from earlier runs stay warm); the headline is the median of the
warm runs after it. `--importtime` also prints `python -X importtime` for the TUI's imports,
grouped by top-level package, and the slowest modules. `--against SRC` (another checkout of the
project, e.g. `git worktree add /tmp/old COMMIT`) also starts `python -m cockpit.cli` from SRC and from
this tree, in turns, and prints the ratio of their medians (the same load hits both). `--past-runs N`
puts N finished runs in the runs dir first. Each measure has its own cache dir (XDG_CACHE_HOME), so a
tree that caches anything starts its first measure cold.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAINTED = ("✓ valid", "^r Launch")  # the editor's status line and its key footer
SIZE = ("80", "24")
# a tmux server of the bench's own (other people's sessions are not touched), kept up between runs by an
# idle session: a run never races a server that is shutting down after the previous run's session ended
SOCKET = Path(tempfile.gettempdir()) / f"cockpit-bench-{os.getpid()}.tmux"


def _tmux(*args: str) -> list[str]:
    return ["tmux", "-S", str(SOCKET), *args]


def _screen(session: str) -> str:
    return subprocess.run(_tmux("capture-pane", "-p", "-t", session), capture_output=True, text=True).stdout


def time_to_screen(command: str, markers: tuple[str, ...], cwd: Path, env: dict, timeout: float = 30.0) -> float:
    """Seconds from starting `command` in a new 80x24 tmux session to a screen showing every marker."""
    session = f"bench{os.getpid()}{time.monotonic_ns() % 10**6}"
    t0 = time.perf_counter()
    subprocess.run(_tmux("new-session", "-d", "-s", session, "-x", SIZE[0], "-y", SIZE[1], "-c", str(cwd), command),
                   check=True, env=env)
    try:
        while time.perf_counter() - t0 < timeout:
            screen = _screen(session)
            if all(m in screen for m in markers):
                return time.perf_counter() - t0
            time.sleep(0.005)
        raise TimeoutError(f"{command!r}: {markers} not on screen after {timeout} s:\n{screen}")
    finally:
        subprocess.run(_tmux("kill-session", "-t", session), capture_output=True)


def import_breakdown(python: str, top: int = 15) -> None:
    """`python -X importtime` of what `cockpit` imports before it paints: by package, then the slowest."""
    code = "import cockpit.cli, cockpit.tui.app"
    err = subprocess.run([python, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=ROOT).stderr
    rows = []  # (module, self us, cumulative us)
    for line in err.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, cum_us, name = line.split(":", 1)[1].split("|")
            rows.append((name.rstrip(), int(self_us), int(cum_us)))
    by_pkg: dict[str, int] = defaultdict(int)
    for name, self_us, _ in rows:
        by_pkg[name.strip().split(".")[0]] += self_us
    total = sum(by_pkg.values())
    print(f"\nimport time of `{code}` (python -X importtime): {total / 1e3:,.0f} ms in all")
    print(f"{'package':<24} {'self ms':>8} {'share':>6}")
    for pkg, us in sorted(by_pkg.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{pkg:<24} {us / 1e3:8.1f} {us / total:6.0%}")
    print(f"\n{'slowest modules (cumulative)':<48} {'ms':>8}")
    for name, _, cum in sorted(rows, key=lambda r: -r[2])[:top]:
        print(f"{name:<48} {cum / 1e3:8.1f}")


# the TUI started in-process, headless at 80x24, quit after its first paint: the CPU time it had used when
# the editor was drawn (where the editor loads the spec's models after its first frame, before it does so;
# a tree from before that measures to the end of its first paint, which is where it loaded them)
CPU_SNIPPET = """
import gc, os, resource, sys
os.environ["COCKPIT_RUNS"] = sys.argv[1]

def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime

at_paint = []
gc.disable()  # as open_tui does over its imports
from cockpit.tui.screens.editor import SpecEditorScreen
if hasattr(SpecEditorScreen, "after_first_paint"):
    drawn = SpecEditorScreen.after_first_paint

    async def after_first_paint(self):
        at_paint.append(cpu())
        await drawn(self)

    SpecEditorScreen.after_first_paint = after_first_paint
try:
    from cockpit.cli import open_tui
except ImportError:  # a tree from before the entry point's own path to the TUI (--against)
    from cockpit.cli import app
    from cockpit.tui.app import CockpitApp

    def open_tui(**options):
        CockpitApp(runs_dir=sys.argv[1]).run(**options)

async def painted(pilot):
    await pilot.pause()
    pilot.app.exit()

open_tui(headless=True, size=(80, 24), auto_pilot=painted)
print(at_paint[0] if at_paint else cpu())
"""


def cpu_to_paint(python: str, src: Path, env: dict, n: int) -> list[float]:
    """CPU seconds (user + system) of `n` processes that import the cockpit and paint the editor, to the
    moment it is drawn: the work a start needs, which a loaded machine delays but does not change."""
    env = dict(env, PYTHONPATH=str(src))
    return [float(subprocess.run([python, "-c", CPU_SNIPPET, env["COCKPIT_RUNS"]], capture_output=True, text=True,
                                 env=env, cwd=src, check=True).stdout.split()[-1]) for _ in range(n)]


def compare(args: argparse.Namespace, cwd: Path, env: dict) -> None:
    """This tree against another, started in turns (`python -m cockpit.cli` from each): ratio of medians."""
    python = Path(args.cockpit).with_name("python")
    sides: dict[str, list[float]] = {"this tree": [], "against": []}
    for i in range(2 * args.runs):
        name = ("this tree", "against")[(i + i // 2) % 2]  # ABBA order
        src = ROOT if name == "this tree" else Path(args.against).resolve()
        sides[name].append(time_to_screen(f"env PYTHONPATH={src} {python} -m cockpit.cli", PAINTED, cwd, env))
    this, other = (statistics.median(sides[k][1:]) for k in ("this tree", "against"))
    print(f"against {args.against}: median {other:.3f} s; this tree {this:.3f} s; "
          f"ratio this / against = {this / other:.3f} ({args.runs - 1} warm starts each, in turns)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="starts of cockpit (the first is the cold one)")
    ap.add_argument("--cockpit", default=str(ROOT / ".venv" / "bin" / "cockpit"), help="the cockpit binary")
    ap.add_argument("--importtime", action="store_true", help="also print the import-time breakdown")
    ap.add_argument("--against", default=None, help="another source tree: start both in turns, print the ratio")
    ap.add_argument("--past-runs", type=int, default=0,
                    help="finished runs to put in the runs dir first (a user's runs dir is seldom empty)")
    args = ap.parse_args(argv)
    if shutil.which("tmux") is None:
        print("tmux is not installed: apt-get install tmux")
        return 2
    load = os.getloadavg()[0]
    subprocess.run(_tmux("new-session", "-d", "-s", "idle", "sleep 3600"), check=True)
    try:
        return _measure(args, load)
    finally:
        subprocess.run(_tmux("kill-server"), capture_output=True)
        SOCKET.unlink(missing_ok=True)


def make_past_runs(runs_dir: Path, n: int) -> None:
    """`n` finished runs of the default spec (their stores only: the start reads each one's state)."""
    if n:
        from engine.spec import RunSpec
        from engine.store import Run

        for _ in range(n):
            run = Run.create(runs_dir, RunSpec(name="past"), preset="quickstart")
            run.set_meta(state="finished")
            run.close()


def _measure(args: argparse.Namespace, load: float) -> int:
    """Start the cockpit `args.runs` times (and the rest the options ask for); print what was measured."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        # a cache of its own: the first start is the first ever (it derives the editor and caches it)
        env = dict(os.environ, COCKPIT_RUNS=str(cwd / "runs"), XDG_CACHE_HOME=str(cwd / "cache"), TERM="xterm-256color")
        make_past_runs(cwd / "runs", args.past_runs)
        env.pop("NO_COLOR", None)
        # an installed cockpit has its bytecode cached (pip compiles it, an editable one writes it on the
        # first start): a machine that sets PYTHONDONTWRITEBYTECODE would compile every module at each start
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        shell = [time_to_screen("echo tmux-is-up; sleep 30", ("tmux-is-up",), cwd, env) for _ in range(3)]
        base = statistics.median(shell)
        times = [time_to_screen(args.cockpit, PAINTED, cwd, env) for _ in range(args.runs)]
        python = str(Path(args.cockpit).with_name("python"))
        cpu = cpu_to_paint(python, ROOT, env, args.runs)
        cpu_other = cpu_to_paint(python, Path(args.against).resolve(), env, args.runs) if args.against else []
        if args.against:
            compare(args, cwd, env)
    warm = times[1:] or times
    print(f"bench/tui_startup.py: {args.cockpit} at 80x24 in tmux, {args.past_runs} past runs in the runs dir; "
          f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at the end; {os.cpu_count()} CPUs")
    print(f"tmux alone (a shell printing a line): median {base * 1e3:.0f} ms")
    print(f"first start: {times[0]:.3f} s ({times[0] - base:.3f} s without tmux's own start)")
    print(f"warm starts ({len(warm)}): median {statistics.median(warm):.3f} s "
          f"({statistics.median(warm) - base:.3f} s without tmux), min {min(warm):.3f} s, max {max(warm):.3f} s")
    print(f"headline: warm start to the painted editor, median = {statistics.median(warm):.3f} s (target < 0.6 s idle)")
    print(f"CPU time to the first paint (in-process, headless; load-independent): median {statistics.median(cpu):.3f} s")
    if cpu_other:
        print(f"CPU time to the first paint, against {args.against}: median {statistics.median(cpu_other):.3f} s; "
              f"ratio this / against = {statistics.median(cpu) / statistics.median(cpu_other):.3f}")
    if args.importtime:
        import_breakdown(str(Path(args.cockpit).with_name("python")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
