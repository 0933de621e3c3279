"""bench/gpu.py's checks: the CUDA paths of `Trainer.train_step` (fp32, bf16, fp16 + GradScaler,
channels_last, torch.compile) train, never sync with the host, and (compiled) never recompile in the
timed steps: the layout is checked on the prepared batch, not by a hook on the compiled model (adding or
removing a hook there forces a recompile, which the old check then timed)."""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from pathlib import Path
from typing import Iterator

import torch

from bench.gpu_report import Report, engine_frame, first_line, guarded, quiet, sync
from engine.spec import load_spec
from engine.store import Run
from engine.train import Trainer

SAMPLED = ("grad_norm/", "update_ratio/", "act/", "difficulty/")


def set_cadence(tr: Trainer, every: int) -> None:
    """Sampled instruments every `every` steps (0: off), live: Trainer and Instruments read spec.monitor each step."""
    m = tr.spec.monitor
    m.grad_flow_every = m.activations_every = m.difficulty_every = every


@contextlib.contextmanager
def strict(sync_check: bool, compiled: bool) -> Iterator[None]:
    """Sync debug mode 'error' (CUDA) and, for a compiled model, an error on any recompile."""
    import torch._dynamo

    saved = torch._dynamo.config.error_on_recompile
    torch._dynamo.config.error_on_recompile = compiled
    if sync_check:
        torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        if sync_check:
            torch.cuda.set_sync_debug_mode("default")
        torch._dynamo.config.error_on_recompile = saved


def checked_steps(tr: Trainer, batches: list, sync_check: bool, compiled: bool = False) -> BaseException | None:
    """Run the batches through train_step under `strict`; the error, if any."""
    try:
        with strict(sync_check, compiled):
            for xb, yb in batches:
                tr.train_step(xb, yb)
    except Exception as exc:  # noqa: BLE001 - a sync or a recompile: reported as a FAIL row
        return exc
    return None


def plain_steps(report: Report, label: str, tr: Trainer, run: Run, stream, cfg, sync_check: bool, warm_s: float) -> bool:
    """Timed steps with the sampled instruments off (compiled: no recompile allowed); False if they failed."""
    set_cadence(tr, 0)
    batches = [next(stream) for _ in range(cfg.check_steps)]
    sync(tr.device)
    ts = time.perf_counter()
    err = checked_steps(tr, batches, sync_check, compiled=tr.spec.train.compile)
    sync(tr.device)
    step_ms = 1000 * (time.perf_counter() - ts) / cfg.check_steps
    if err is not None:
        report.row(f"check {label}: no host sync{' or recompile' if tr.spec.train.compile else ''} in train_step "
                   "(instruments off)", f"FAIL: {first_line(err)} at {engine_frame(err)}", ok=False)
        return False
    tr.flush_window()
    loss = run.last_values().get("train_loss", float("nan"))
    extra = f", loss scale {tr.scaler.get_scale():g}" if tr.scaler.is_enabled() else ""
    if tr.amp_dtype is not None:
        extra += f", autocast {str(tr.amp_dtype).removeprefix('torch.')}"
    if tr.spec.train.compile:
        extra += f"; compile + warm-up {warm_s:.1f} s, apart; no recompile in the timed steps"
    ok = math.isfinite(loss)
    report.row(f"check {label}: trains", f"{'pass' if ok else 'FAIL'} (loss {loss:.3f} after {tr.step} steps, "
               f"{step_ms:.1f} ms/step{extra})", number=step_ms, unit="ms/step", ok=ok)
    if sync_check:
        report.row(f"check {label}: no host sync in train_step (instruments off)",
                   f"pass ({cfg.check_steps} steps under set_sync_debug_mode('error'))")
    return True


def sampled_steps(report: Report, label: str, tr: Trainer, run: Run, stream, cfg, sync_check: bool) -> None:
    """Steps with grad flow, activations and difficulty every 2nd step (the read excluded)."""
    set_cadence(tr, 2)
    batches = [next(stream) for _ in range(cfg.check_steps)]
    sync(tr.device)
    first_id = run.con.execute("SELECT COALESCE(MAX(id), 0) FROM metrics").fetchone()[0]
    err = checked_steps(tr, batches, sync_check)
    name = f"check {label}: {'no host sync in train_step (sampled instruments)' if sync_check else 'sampled instruments run'}"
    if err is not None:
        report.row(name, f"FAIL: {first_line(err)} at {engine_frame(err)}", ok=False)
        return
    tr.flush_window()
    _, rows = run.metrics_since(first_id)
    kinds = sorted({p.rstrip("/") for p in SAMPLED for r in rows if r.name.startswith(p)})
    ran = f"sampled: {', '.join(kinds) or 'NONE'}"
    text = f"{cfg.check_steps} steps under set_sync_debug_mode('error'); {ran}" if sync_check else ran
    report.row(name, f"{'pass' if kinds else 'FAIL'} ({text})", ok=bool(kinds))


def layout(report: Report, label: str, tr: Trainer, xb: torch.Tensor) -> None:
    """channels_last: the first conv's weight, and the prepared batch (what the first conv takes)."""
    conv = next((m for m in tr.model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if not tr.channels_last or conv is None:
        return
    w_cl = conv.weight.is_contiguous(memory_format=torch.channels_last)
    x_cl = tr.parts.prepare(xb).is_contiguous(memory_format=torch.channels_last)
    report.row(f"check {label}: channels_last", f"{'pass' if w_cl and x_cl else 'FAIL'} (first conv weight "
               f"{'is' if w_cl else 'is NOT'}, prepared input {'is' if x_cl else 'is NOT'} channels_last)", ok=w_cl and x_cl)


def check_mode(report: Report, label: str, sets: list[str], cfg, sync_check: bool) -> None:
    """Train a few steps in one mode: warm-up (both paths), plain steps, sampled steps, layout."""
    spec = load_spec(None, cfg.check_sets + sets)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-check-") as tmp:
        run = Run.create(Path(tmp), spec)
        tr = Trainer(spec, run, log=quiet)
        try:
            stream = tr.train_loader.forever()
            # warm up both paths: plain steps (compiled, if compiling: the compile is timed here, apart),
            # then sampled ones (eager, hooks); with cadence 2 alone, short warm-ups were all sampled steps
            set_cadence(tr, 0)
            tw = time.perf_counter()
            for _ in range(cfg.check_warmup):
                tr.train_step(*next(stream))
            sync(tr.device)
            warm_s = time.perf_counter() - tw
            set_cadence(tr, 2)
            for _ in range(2):
                tr.train_step(*next(stream))
            tr.flush_window()
            if plain_steps(report, label, tr, run, stream, cfg, sync_check, warm_s):
                sampled_steps(report, label, tr, run, stream, cfg, sync_check)
            layout(report, label, tr, next(stream)[0])
        finally:
            run.close()


def part_checks(report: Report, cfg) -> None:
    cuda = cfg.device.type == "cuda"
    label32 = "fp32" if cuda else "fp32 step on CPU"
    guarded(report, f"check {label32}", lambda: check_mode(report, label32, ["train.amp=off", "train.channels_last=false"],
                                                        cfg, sync_check=cuda))
    modes = [("bf16 + channels_last", ["train.amp=bf16", "train.channels_last=true"]),
             ("fp16 + GradScaler + channels_last", ["train.amp=fp16", "train.channels_last=true"])]
    if cfg.compile:
        modes.append(("bf16 + channels_last + torch.compile",
                      ["train.amp=bf16", "train.channels_last=true", "train.compile=true", f"model.name={cfg.compile_model}"]))
    for label, sets in modes:
        if not cuda:
            report.row(f"check {label}", "skipped (no CUDA)")
        elif "bf16" in label and not torch.cuda.is_bf16_supported():
            report.row(f"check {label}", "skipped (no bf16 on this GPU)")
        else:
            guarded(report, f"check {label}", lambda: check_mode(report, label, sets, cfg, sync_check=True))
    if cfg.compile and not cuda:  # the compile check's own logic (warm-up apart, no recompile) on CPU
        guarded(report, "check torch.compile step on CPU", lambda: check_mode(
            report, "torch.compile step on CPU", ["train.compile=true", f"model.name={cfg.compile_model}"], cfg, False))
    if not cfg.compile:
        report.row("check torch.compile", "skipped (--no-compile)")
