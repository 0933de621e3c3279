"""Finishing-pass commands: `cockpit swa / calibrate / tta / ensemble / lr-find`.

These are plain Typer command functions; `cockpit.cli` registers them. A live run (running or
paused, with its worker) gets the pass as a command through its commands table and the worker
computes it on its in-memory model; any other run is loaded from its spec and checkpoint and the
pass runs in this process. Either way the result lands in the run store and is printed as a
before/after table. torch is imported only inside the commands (the CLI must start fast).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, get_args

import typer
from rich.table import Table
from rich.text import Text

from cockpit.core.asking import ask
from cockpit.core.formats import fmt_pct, fmt_pct_std
from engine.contracts import CALIBRATE_METHODS, Command, CommandError, PassCommand, ResultModel, UsageError, parse_command
from engine.spec import EvaluateSpec
from engine.store import ACTIVE_STATES, Run, StoreError

if TYPE_CHECKING:
    from engine.contracts import CalibrationResult, SWAResult, TTAResult

from .complete import complete_preset
from .common import RunArg, RunsDirOpt, SetOpt, console, err, fail, open_run, resolve_spec, runs_dir_or_default

CheckpointOpt = typer.Option(None, "--checkpoint", "-c", show_default=False,
                             help="best, last or swa (default: best, else last; a live run: its in-memory model).")
TimeoutOpt = typer.Option(600.0, "--timeout", help="Seconds to wait for a live run's worker to answer.")
R = TypeVar("R")
# what a user fixes by changing their input (a bad checkpoint name, missing data, no CUDA...): one message, exit 2
USER_ERRORS = (UsageError, StoreError, ValueError)


# ------------------------------------------------------------------------------------ plumbing


def _is_live(r: Run) -> bool:
    state, meta = r.reap(), r.meta()
    if meta.get("kind") == "lr_find":  # an LR range test has no worker and no model to pass over
        return False
    return state in ("running", "paused") or (state in ACTIVE_STATES and bool(meta.get("pid")))


def _command(kind: str, **args: Any) -> Command:
    """The typed command for a pass as typed on the command line (unset options left out)."""
    try:
        return parse_command(kind, {k: v for k, v in args.items() if v is not None})
    except CommandError as exc:
        fail(str(exc))


def _via_worker(r: Run, command: Command, timeout: float) -> tuple[str, ResultModel | None]:
    """Send a command to the live worker, wait for its ack; (reply, the result it stored or None)."""
    kind = command.kind
    after = r.last_result_id()
    with console.status(f"{kind}: waiting for {r.run_id}'s worker (it acts at the next step boundary)"):
        answer = ask(r, command, "cli", timeout)
    if answer.status == "failed":
        fail(f"{kind}: the worker of {r.run_id} refused: {answer.reply}", code=1)
    if answer.status != "done":
        fail(f"{kind}: {answer.reply}", code=1)
    stored = r.results(kind, after_id=after)
    return answer.reply or "done", (stored[-1].data if stored else None)


def _in_process(r: Run, what: str, compute: Callable[[], R]) -> R:
    with console.status(f"{what}: loading {r.run_id} and computing"):
        try:
            return compute()
        except USER_ERRORS as exc:
            fail(f"{what} on {r.run_id}: {exc}")


def _pass(run_ref: str, runs_dir: Optional[Path], command: PassCommand, timeout: float) -> tuple[Run, Any, str]:
    """Run a pass on a run (live: through its worker); (run, its typed result, how it ran)."""
    r = open_run(run_ref, runs_dir)
    if _is_live(r):
        reply, result = _via_worker(r, command, timeout)
        if result is None:
            fail(f"{command.kind}: the worker stored no result", code=1)
        return r, result, f"run {r.run_id}, live model at step {result.step} ({reply})"
    from engine.passes import run_pass

    result = _in_process(r, command.kind, lambda: run_pass(r, command))
    return r, result, f"run {r.run_id}, checkpoint {result.checkpoint}"


def num(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and math.isfinite(v) else "–"


def delta(v: Any, as_pct: bool = True, higher_is_better: bool = True) -> Text:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return Text("–")
    good = (v > 0) == higher_is_better
    style = "green" if v and good else "red" if v else ""
    return Text(f"{v:+.2%}" if as_pct else f"{v:+.4f}", style=style)


def _where(where: str) -> None:
    if where:
        console.print(Text(where, style="dim"))


def _table(title: str, columns: list[str]) -> Table:
    t = Table(title=title, header_style="bold", title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    return t


# ------------------------------------------------------------------------------------ commands


def calibrate_command(run_ref: str = RunArg, checkpoint: Optional[str] = CheckpointOpt,
                      method: Optional[str] = typer.Option(
                          None, "--method", show_default=False,
                          help="log_t: LBFGS on log T from T = 1 with a line search; guide: the guide's LBFGS lr 0.01 on T "
                               "from 1.5, 50 steps, which can diverge on under-confident logits (then an error, nothing "
                               "applied). Default: the spec's evaluate.calibrate_method."),
                      runs_dir: Optional[Path] = RunsDirOpt, timeout: float = TimeoutOpt) -> None:
    """Fit a temperature on the validation split; NLL, ECE and accuracy on the test set before and after."""
    if method is not None and method not in CALIBRATE_METHODS:
        fail(f"--method: unknown method {method!r}; valid: {', '.join(CALIBRATE_METHODS)}")
    _, result, where = _pass(run_ref, runs_dir, _command("calibrate", checkpoint=checkpoint, method=method), timeout)
    print_calibration(result, where)


def print_calibration(res: CalibrationResult, where: str = "") -> None:
    b, a = res.before, res.after
    _where(where)
    t = _table("temperature scaling (test set)", ["", "NLL", "ECE", "accuracy"])
    t.add_row("before", num(b.nll), fmt_pct(b.ece), fmt_pct(b.acc))
    t.add_row("after", num(a.nll), fmt_pct(a.ece), fmt_pct(a.acc))
    t.add_row(Text("Δ", style="bold"), delta(a.nll - b.nll, False, False), delta(a.ece - b.ece, True, False),
              delta(a.acc - b.acc))
    console.print(t)
    console.print(f"temperature [bold]{res.temperature:.4f}[/] (fit on {res.val_size} validation images by {res.method}: "
                  f"{CALIBRATE_METHODS.get(res.method, '')}; {res.bins} bins)", highlight=False)
    rows = [(x, y) for x, y in zip(res.reliability.before, res.reliability.after) if x.count or y.count]
    if rows:
        rel = _table("reliability (accuracy − confidence per bin)", ["confidence", "n before", "gap before",
                                                                     "n after", "gap after"])
        for x, y in rows:
            gap = [(v.acc - v.conf) if v.count else None for v in (x, y)]
            rel.add_row(f"{x.lower:.2f}–{x.upper:.2f}", str(x.count), delta(gap[0]) if gap[0] is not None else "",
                        str(y.count), delta(gap[1]) if gap[1] is not None else "")
        console.print(rel)


def _spec_choices(field: str) -> tuple[str, ...]:
    """The names a field of the spec's [evaluate] accepts (its Literal, or its list of one)."""
    args = get_args(EvaluateSpec.model_fields[field].annotation)
    while args and not isinstance(args[0], str):
        args = get_args(args[0])
    return args


TTA_VIEWS = _spec_choices("tta_views")
TTA_RECIPES = _spec_choices("tta_recipe")


def _tta_recipe(r: Run, recipe: str) -> dict[str, Any]:
    """The views a TTA recipe averages: guide: the guide's tta_predict; views: the spec's tta_* settings."""
    if recipe == "guide":
        from engine.passes.tta import GUIDE_TTA

        return {"views": list(GUIDE_TTA["views"]), "random_views": GUIDE_TTA["random_views"],
                "combine": GUIDE_TTA["combine"]}
    try:
        ev = r.spec().evaluate
    except Exception as exc:  # an unreadable spec.toml: say so instead of a traceback
        fail(f"tta --recipe views: cannot read the spec of {r.run_id}: {str(exc).splitlines()[0]}")
    return {"views": list(ev.tta_views), "random_views": ev.tta_random_views, "combine": ev.tta_combine}


def tta_command(run_ref: str = RunArg, checkpoint: Optional[str] = CheckpointOpt,
                recipe: Optional[str] = typer.Option(None, "--recipe", show_default=False,
                                                     help="guide: the guide's tta_predict (5 random augmented views, mean "
                                                          "of the logits); views: the spec's evaluate.tta_* views "
                                                          "(default: the spec's evaluate.tta_recipe)."),
                views: Optional[str] = typer.Option(None, "--views", show_default=False,
                                                    help=f"Comma-separated: {', '.join(TTA_VIEWS)} (default: the recipe's)."),
                random_views: Optional[int] = typer.Option(None, "--random-views", min=0, max=64, show_default=False,
                                                           help="Extra seeded random augmented views (default: the recipe's)."),
                draws: Optional[int] = typer.Option(None, "--draws", min=1, max=100, show_default=False,
                                                    help="Draw the random views N times (seeds SEED .. SEED+N-1) and report "
                                                         "the mean ± sample std of the TTA accuracy (default: 1)."),
                seed: Optional[int] = typer.Option(None, "--seed", min=0, show_default=False,
                                                   help="Seed of the (first) draw of random views (default: the run's train.seed)."),
                runs_dir: Optional[Path] = RunsDirOpt, timeout: float = TimeoutOpt) -> None:
    """Test-time augmentation: accuracy with and without TTA, and each view's own accuracy."""
    if recipe is not None and recipe not in TTA_RECIPES:
        fail(f"--recipe: unknown recipe {recipe!r}; valid: {', '.join(TTA_RECIPES)}")
    if views is not None:
        names = [v.strip() for v in views.split(",") if v.strip()]
        bad = [v for v in names if v not in TTA_VIEWS]
        if bad or not names:
            fail(f"--views: unknown view(s) {', '.join(bad) or '(none given)'}; valid: {', '.join(TTA_VIEWS)}")
        views = ",".join(names)
    options = _tta_recipe(open_run(run_ref, runs_dir), recipe) if recipe else {}
    options |= {k: v for k, v in (("views", views), ("random_views", random_views), ("draws", draws), ("seed", seed))
                if v is not None}
    _, result, where = _pass(run_ref, runs_dir, _command("tta", checkpoint=checkpoint, **options), timeout)
    print_tta(result, where)


def print_tta(res: TTAResult, where: str = "") -> None:
    _where(where)
    t = _table(f"test-time augmentation (test set, {res.seeds_text})", ["", "accuracy", "NLL"])
    t.add_row("without TTA", fmt_pct(res.base_acc), num(res.base_loss))
    t.add_row(f"with TTA ({res.n_views} views, mean {res.combine})", fmt_pct_std(res.tta_acc, res.tta_acc_std),
              num(res.tta_loss))
    t.add_row(Text("Δ", style="bold"), delta(res.delta), delta(res.tta_loss - res.base_loss, False, False))
    console.print(t)
    if res.draws > 1:
        console.print(f"mean ± sample std (n − 1) over {res.draws} draws of the random views ({res.seeds_text}): "
                      + ", ".join(f"seed {s} {fmt_pct(a)}" for s, a in zip(res.draw_seeds, res.draw_accs)), highlight=False)
    v = _table("views" + (f" (means over {res.draws} draws)" if res.draws > 1 else ""), ["view", "accuracy", "vs identity"])
    for name, acc in res.views.items():
        v.add_row(name, fmt_pct(acc), delta(acc - res.base_acc))
    console.print(v)


def swa_command(run_ref: str = RunArg,
                epochs: Optional[int] = typer.Option(None, "--epochs", min=1, show_default=False,
                                                     help="Extra epochs to average over (default: swa.anneal_epochs + 2)."),
                runs_dir: Optional[Path] = RunsDirOpt, timeout: float = TimeoutOpt) -> None:
    """SWA on a finished or stopped run: train a few more epochs with SWALR, average, recompute BN, compare.

    On a live run: start weight averaging now (evaluated and stored when training ends).
    """
    r = open_run(run_ref, runs_dir)
    if _is_live(r):
        if epochs is not None:
            err.print("[yellow]--epochs is ignored for a live run: it averages until its last epoch[/]")
        reply, _ = _via_worker(r, _command("swa"), timeout)
        console.print(f"swa: {reply}")
        return
    from engine.passes import swa_pass

    res = _in_process(r, "swa", lambda: swa_pass(r, epochs=epochs))
    print_swa(res, f"run {r.run_id}, {res.epochs} extra epochs from {res.source or 'last.pt'}")


def print_swa(res: SWAResult, where: str = "") -> None:
    _where(where)
    t = _table("stochastic weight averaging", ["", "test accuracy", "test loss"])
    t.add_row("base (checkpoint)", fmt_pct(res.base_acc), num(res.base_loss))
    t.add_row("SWA (averaged, BN recomputed)", fmt_pct(res.swa_acc), num(res.test_loss))
    base_loss = math.nan if res.base_loss is None else res.base_loss
    t.add_row(Text("Δ", style="bold"), delta(res.delta), delta(res.test_loss - base_loss, False, False))
    console.print(t)
    console.print(f"saved checkpoints/{res.checkpoint or 'swa.pt'} (swa lr {'?' if res.lr is None else res.lr}, "
                  f"{res.epochs} epochs)")


def ensemble_command(run_refs: list[str] = typer.Argument(..., metavar="RUN...", help="Two or more runs on the same data."),
                     checkpoint: str = typer.Option("best", "--checkpoint", "-c", help="best, last or swa (best falls back to last)."),
                     runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Ensemble runs on the first run's test set: mean probability and two votes, vs the best member.

    Majority vote: each member's top-1 class is a vote; a tie (every disagreement of two members) goes
    to the tied class with the highest mean probability. The guide's vote: torch.mode over the top-1
    classes, as the guide's code does; a tie goes to the lowest class index."""
    if len(run_refs) < 2:
        fail("ensemble needs at least two runs")
    runs = [open_run(ref, runs_dir) for ref in run_refs]
    from engine.passes import ensemble_runs

    with console.status(f"ensemble: computing {len(runs)} runs' test logits"):
        try:
            data = ensemble_runs(runs, checkpoint=checkpoint).model_dump()
        except USER_ERRORS as exc:
            fail(f"ensemble: {exc}")
    print_ensemble(data)
    console.print(f"result stored in {runs[0].run_id}")


def print_ensemble(data: dict[str, Any]) -> None:
    t = _table("ensemble", ["", "checkpoint", "test accuracy", "vs best member"])
    best = data["best_member_acc"]
    for m in data["members"]:
        t.add_row(m["run"], m.get("checkpoint", ""), fmt_pct(m["acc"]), delta(m["acc"] - best))
    t.add_row(Text("mean probability", style="bold"), "", fmt_pct(data["mean_prob_acc"]), delta(data["gain"]))
    t.add_row(Text("majority vote (tie: highest mean prob)", style="bold"), "", fmt_pct(data["vote_acc"]),
              delta(data["vote_acc"] - best))
    if data.get("mode_vote_acc") is not None:
        t.add_row(Text("guide's torch.mode vote (tie: lowest class)", style="bold"), "",
                  fmt_pct(data["mode_vote_acc"]), delta(data["mode_vote_acc"] - best))
    console.print(t)


def lr_find_command(preset: Optional[str] = typer.Argument(None, help="Preset file or name (default: quickstart).",
                                                           autocompletion=complete_preset),
                    sets: list[str] = SetOpt,
                    steps: int = typer.Option(200, "--steps", min=2, help="Optimizer steps in the sweep."),
                    runs_dir: Optional[Path] = RunsDirOpt,
                    start_lr: float = typer.Option(1e-6, "--start-lr", help="First learning rate."),
                    end_lr: float = typer.Option(10.0, "--end-lr", help="Last learning rate.")) -> None:
    """LR range test: sweep the LR exponentially from a fresh model, plot the loss, suggest an LR.

    Makes a new run (<name>-lrfind) that holds the curve, so it shows in `cockpit runs`.
    """
    if not (0 < start_lr < end_lr < math.inf):
        fail(f"need 0 < --start-lr < --end-lr, both finite numbers, got {start_lr:g} and {end_lr:g}")
    spec, label = resolve_spec(preset, sets)
    spec = spec.model_copy(update={"name": f"{spec.name[:57]}-lrfind"})
    try:
        r = Run.create(runs_dir_or_default(runs_dir), spec, preset=label)
    except StoreError as exc:
        fail(str(exc))
    r.set_meta(state="running", started=time.time(), pid=os.getpid(), kind="lr_find", total_steps=steps)
    from engine.passes import lr_find

    try:
        with console.status(f"lr-find: {steps} steps from lr {start_lr:g} to {end_lr:g} ({r.run_id})"):
            data = lr_find(spec, steps=steps, start_lr=start_lr, end_lr=end_lr, run=r).model_dump()
    except KeyboardInterrupt:
        r.set_meta(state="stopped", ended=time.time(), error="interrupted")
        raise typer.Exit(130)
    except USER_ERRORS as exc:
        r.set_meta(state="failed", ended=time.time(), error=str(exc))
        fail(f"lr-find: {exc}", code=1)
    except Exception as exc:
        r.set_meta(state="failed", ended=time.time(), error=f"{type(exc).__name__}: {exc}")
        raise
    r.set_meta(state="finished", ended=time.time())
    print_lr_find(data, r.run_id)


def lr_plot(points: list[dict[str, float]], mark: float | None = None, width: int = 60, height: int = 12) -> list[str]:
    """A text plot of the smoothed loss against log10(lr); a ┆ column marks `mark`."""
    pts = [(math.log10(p["lr"]), p["smooth"]) for p in points if p["lr"] > 0 and math.isfinite(p["smooth"])]
    if len(pts) < 2:
        return []
    x0, x1 = pts[0][0], pts[-1][0]
    lo = min(y for _, y in pts)
    hi = min(max(y for _, y in pts), lo + 4 * (pts[0][1] - lo) if pts[0][1] > lo else math.inf)
    hi = hi if hi > lo else lo + 1e-9
    grid = [[" "] * width for _ in range(height)]
    col = lambda x: min(width - 1, max(0, round((x - x0) / max(x1 - x0, 1e-12) * (width - 1))))  # noqa: E731
    if mark and mark > 0:
        c = col(math.log10(mark))
        for row in grid:
            row[c] = "┆"
    for x, y in pts:
        r = height - 1 - min(height - 1, max(0, round((min(y, hi) - lo) / (hi - lo) * (height - 1))))
        grid[r][col(x)] = "•"
    label_w = 8
    lines = []
    for i, row in enumerate(grid):
        label = f"{hi:.3g}" if i == 0 else f"{lo:.3g}" if i == height - 1 else ""
        lines.append(f"{label:>{label_w}} │{''.join(row)}")
    lines.append(" " * label_w + " └" + "─" * width)
    left, right = f"{10 ** x0:.0e}", f"{10 ** x1:.0e}"
    lines.append(" " * (label_w + 2) + left + " " * max(1, width - len(left) - len(right)) + right)
    return lines


def print_lr_find(data: dict[str, Any], run_id: str = "") -> None:
    from cockpit.core.sparkline import sparkline

    points = data["points"]
    console.print(f"smoothed loss  {sparkline([p['smooth'] for p in points], width=60)}", highlight=False)
    for line in lr_plot(points, data["suggested_lr"]):
        console.print(Text(line))
    method = {"steepest": "steepest descent of the smoothed loss",
              "min_loss/10": "a tenth of the LR at the minimum loss"}.get(data["method"], data["method"])
    _where(f"run {run_id}" if run_id else "")
    t = _table("LR range test", ["", "learning rate"])
    t.add_row(Text("suggested", style="bold green"), Text(f"{data['suggested_lr']:.3g}", style="bold green"))
    t.add_row("  by", method)
    t.add_row("minimum smoothed loss at", f"{data['min_loss_lr']:.3g}")
    if data.get("steepest_lr"):
        t.add_row("steepest descent at", f"{data['steepest_lr']:.3g}")
    t.add_row("swept", f"{data['start_lr']:g} → {points[-1]['lr']:.3g} in {len(points)} steps")
    console.print(t)
    if data.get("stop_reason"):
        console.print(f"stopped early: {data['stop_reason']}")
    console.print(f"try: --set optim.lr={data['suggested_lr']:.3g}")


COMMANDS = {"swa": swa_command, "calibrate": calibrate_command, "tta": tta_command, "ensemble": ensemble_command,
            "lr-find": lr_find_command}
