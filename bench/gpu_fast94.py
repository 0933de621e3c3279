"""bench/gpu.py's fast94 part, run first in its process (nothing compiled before it, as in the worker of
`cockpit run fast94`): three sides in rotation on the same images.

- **fast94**: the preset as shipped, through the worker's own code (bench/gpu_sides.py);
- **fast94 lean**: the same with evaluation and checkpoints only at the end and no hardest examples
  (spec options: `evaluate.every`, `train.checkpoint_every`, `evaluate.hardest=0`);
- **airbench94**: its own `train94` and `evaluate(tta_level=2)`, on the same uint8 images written in its
  format (shuffled with a fixed seed: airbench whitens from the first 5,000 of its set).

First one discarded warm-up per side (fast94: a whole fit with TTA, which holds the compile; airbench:
its `warmup94` and one train + evaluate). Then seed by seed, the order of the sides rotating, each seed's
rows and the JSON written as it ends. Dynamo's graph and frame counts are read before and after every
seed; a graph compiled after the warm-up is a recompile and FAILs the bench. Per side at the end: the
median and mean +- std of the time (fit + TTA; start-up apart), the mean +- std TTA accuracy, and the
accuracy difference to airbench94 with a 95% interval (Welch). On the JPEG copy accuracy is relative.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from bench.gpu_report import Budget, Report, guarded
from bench.gpu_sides import Airbench, dynamo_counts, run_fast94
from cockpit.core.presets import find_preset
from engine.spec import RunSpec, load_spec

SIDES = ("fast94", "fast94 lean", "airbench94")
# two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (then 1.96)
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def lean_sets(spec: RunSpec) -> list[str]:
    e = spec.train.epochs
    return [f"evaluate.every={e}", f"train.checkpoint_every={e}", "evaluate.hardest=0"]


def spec_for(cfg, side: str, seed: int) -> RunSpec:
    sets = cfg.data_sets + cfg.fast94_sets + [f"train.seed={seed}"]
    spec = load_spec(find_preset("fast94"), sets)
    return load_spec(find_preset("fast94"), sets + lean_sets(spec)) if side == "fast94 lean" else spec


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """mean(a) - mean(b) and the half-width of its 95% interval (Welch's t, degrees of freedom floored)."""
    d = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return d, float("nan")
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, 0.0
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return d, se * (T975[int(df) - 1] if int(df) <= len(T975) else 1.96)


def mean_sd(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


class Rotation:
    """The sides, their warm-ups and seeds, the compile counts, the rows."""

    def __init__(self, report: Report, cfg, tmp: Path):
        self.report, self.cfg, self.tmp, self.runs = report, cfg, tmp, tmp / "runs"
        self.results: dict[str, list[dict[str, Any]]] = {s: [] for s in SIDES}
        self.airbench: Airbench | None = None
        self.warm_graphs = 0
        self.acc_label = "TTA accuracy"

    def fast(self, side: str, seed: int) -> dict[str, Any]:
        return run_fast94(spec_for(self.cfg, side, seed), self.runs)

    def warm_up(self) -> bool:
        before = dynamo_counts()
        self.report.row("fresh process", f"{'pass' if before['graphs'] == 0 else 'FAIL'}: {before['graphs']} graph(s) "
                        "compiled in this process before fast94 (a worker compiles nothing before it)",
                        ok=before["graphs"] == 0)
        w = guarded(self.report, "fast94 warm-up", lambda: self.fast("fast94", 10_000))
        if w is None:
            return False
        warm = dynamo_counts()
        self.warm_graphs = warm["graphs"]
        data = w.pop("data")
        kind = "JPEG copy" if "JPEG" in data.name else data.name
        self.acc_label = f"TTA accuracy, relative (CIFAR-10 {kind})" if "JPEG" in data.name else "TTA accuracy"
        self.report.row("fast94 warm-up", f"{w['time_s']:.1f} s (compile included, discarded); {self.warm_graphs} graph(s) "
                        f"compiled, {warm['graph_breaks']} graph break(s); {w['steps']} steps, {w['state']}", number=w["time_s"], unit="s")
        self.report.row("fast94 spec", f"{find_preset('fast94')} + {' '.join(self.cfg.data_sets + self.cfg.fast94_sets)}; "
                        f"lean: + {' '.join(lean_sets(spec_for(self.cfg, 'fast94', 0)))}; data: {data.name}")
        self.airbench = self._airbench(data)
        return True

    def _airbench(self, data) -> Airbench | None:
        try:
            ab = Airbench(data, self.tmp, self.cfg.device)
        except ImportError:
            self.report.row("airbench94 reference", "skipped (airbench not installed: bench/carry.sh, bench/README.md)")
            return None
        if self.cfg.device.type != "cuda":
            self.report.row("airbench94 reference", f"skipped (its train94 needs CUDA); {ab.read_back()}")
            return None
        if guarded(self.report, "airbench94 warm-up", lambda: ab.warm_up() or True) is None:
            return None
        self.report.row("airbench94 reference", f"airbench {getattr(ab.ab, '__version__', '0.1.8')}: warmup94 + one "
                        f"train94 + evaluate discarded, then train94 + evaluate(tta_level=2); {ab.read_back()}")
        return ab

    def one(self, side: str, seed: int) -> bool:
        """One seed of one side, its row; False if it failed or recompiled."""
        before = dynamo_counts()
        if side == "airbench94":
            r = guarded(self.report, f"{side} seed {seed}", lambda: self.airbench.run(seed))
        else:
            r = guarded(self.report, f"{side} seed {seed}", lambda: self.fast(side, seed))
        after = dynamo_counts()
        if r is None:
            return False
        r.pop("data", None)
        r["dynamo"] = {"before": before, "after": after}
        self.results[side].append(r)
        recompiled = after["graphs"] > before["graphs"]
        parts = ", ".join(f"{k} {v:.3f}" for k, v in r["parts"].items())
        extra = f"; start-up {r['startup_s']:.2f} s; {r['steps']} steps, {r['state']}" if "startup_s" in r else ""
        mem = f"; peak {r['memory_gb']:.2f} GiB" if "memory_gb" in r else ""
        graphs = f"; graphs {before['graphs']} -> {after['graphs']}" + (" RECOMPILED" if recompiled else "")
        self.report.row(f"{side} seed {seed}", f"{self.acc_label} {r['acc']:.2%}; time {r['time_s']:.2f} s "
                        f"({parts}){extra}{mem}{graphs}", number=r["time_s"], unit="s", ok=not recompiled,
                        data={"side": side, "seed": seed, **r})
        if recompiled:
            self.report.row("RECOMPILE after warm-up", f"FAIL: {side} seed {seed} compiled {after['graphs'] - before['graphs']} "
                            "new graph(s); its time includes compiling and the comparison is void", ok=False)
        return not recompiled

    def summary(self) -> None:
        ab = [r["acc"] for r in self.results["airbench94"]]
        ab_t = [r["time_s"] for r in self.results["airbench94"]]
        for side in SIDES:
            rs = self.results[side]
            if not rs:
                continue
            t, acc = [r["time_s"] for r in rs], [r["acc"] for r in rs]
            tm, tsd = mean_sd(t)
            am, asd = mean_sd(acc)
            text = (f"time median {statistics.median(t):.2f} s, mean {tm:.2f} +- {tsd:.2f} s; {self.acc_label} "
                    f"{am:.2%} +- {asd:.2%}")
            if side != "airbench94" and len(ab) > 1 and len(acc) > 1:
                d, half = welch(acc, ab)
                text += f"; vs airbench94 {d * 100:+.2f} +- {half * 100:.2f} points (95%)"
            self.report.row(f"{side} ({len(rs)} seeds)", text, number=statistics.median(t), unit="s")
            if side != "airbench94" and ab_t:
                ratio = statistics.median(t) / statistics.median(ab_t)
                self.report.row(f"{side} time / airbench94 time", f"{ratio:.2f}x (medians; goal <= 1.25x, aim 0.9x)",
                                number=ratio, unit="x")
        for side in ("fast94", "fast94 lean"):
            rs = self.results[side]
            if rs:
                parts = {k: statistics.median(r["parts"][k] for r in rs) for k in rs[0]["parts"]}
                up = statistics.median(r["startup_s"] for r in rs)
                self.report.row(f"{side} where the time goes (medians, s)", ", ".join(f"{k} {v:.3f}" for k, v in parts.items())
                                + f"; start-up apart {up:.2f}")


def part_fast94(report: Report, cfg, budget: Budget, tmp: Path) -> None:
    rot = Rotation(report, cfg, tmp)
    if not rot.warm_up():
        return
    sides = [s for s in SIDES if s != "airbench94" or rot.airbench is not None]
    start, reserve = budget.elapsed(), getattr(cfg, "reserve_after_fast94", 0.0)
    try:
        for i in range(cfg.seeds):
            per_seed = (budget.elapsed() - start) / i if i else 0.0
            if i and budget.left() - reserve < per_seed * 1.1:
                report.row("fast94 seeds", f"stopped after {i} of {cfg.seeds} seeds per side (budget: {budget.left():.0f} s "
                           f"left, {reserve:.0f} s kept for the next parts, {per_seed:.0f} s per rotation)")
                break
            order = sides[i % len(sides):] + sides[:i % len(sides)]
            for side in order:
                if not rot.one(side, i):
                    return
    finally:
        rot.summary()
