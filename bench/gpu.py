"""GPU benchmark and CUDA-path check (issue #10): one script, every figure a `figure | value | device` row.

    python bench/gpu.py [--data DIR|TARBALL|synthetic] [--out FILE.json] [--parts checks,throughput,fast94]
                        [--budget S] [--fast94-cap S] [--tput-steps N] [--tput-cap S] [--workers N] [--no-compile]
    python bench/gpu.py --cpu-smoke        # the same code paths on CPU, tiny sizes, well under a minute

Parts, in this order (each one guarded: a part that breaks prints a FAIL row and the next part runs):

1. checks: the CUDA paths of `Trainer.train_step` on synthetic data, every augmentation op on: fp32, bf16
   autocast, fp16 with GradScaler, channels_last (model weights and the first conv's input), torch.compile.
   For each mode, after
   warm-up, steps run under `torch.cuda.set_sync_debug_mode("error")`, calling `train_step` directly (the
   read, `flush_window`, is excluded: it is the one allowed sync): first plain steps (sampled instruments
   off), then steps with grad flow, activations and difficulty every 2nd step, so the instruments' sampled
   path and, with compile, the compiled forward are both checked. A failing sync names the engine line.
2. throughput: `sgd_cosine.toml` (ResNet-18, the guide's augmentation) images/s through the engine (data and
   augmentation on the device, default instruments, the read every `monitor.every` steps) vs the same model,
   AMP, channels_last and optimizer fed by torchvision's per-image pipeline: a Dataset of PIL images made
   from the same uint8 data, `engine.augment.torchvision_guide_transform` (the guide's exact Compose), and a
   DataLoader with all CPU cores as workers, pinned memory and persistent workers. Both over N steps after a
   warm-up, each capped in time. The DataLoader alone (no model) is timed too, to show which side limits.
3. fast94: `cockpit/presets/fast94.toml` (or, if absent, an explicit fallback: the quickstart spec with
   model.name=fastnet, onecycle, label smoothing 0.2, batch 512, translate 2, flip, flip+translate TTA)
   trained with the instruments at the preset's cadences, then again with them off; each run capped in time.
   Reported: wall time from the start of `Trainer.fit()` to the first per-epoch test evaluation >= 94%
   (or to the end-of-run TTA evaluation when only that reaches it), or "not reached, best X% in T s".

Data: CIFAR-10 from `--data`: an unpacked JPEG tree (train/<class>/*.jpg, test/<class>/*.jpg), or the
tarball (unpacked to a temp dir first), used as `data.source=cifar10 data.root=DIR`. Without --data the
script looks for cifar10-jpg.tar.gz in ./shared/data/ and ../shared/data/. `--data synthetic` uses the
synthetic source at CIFAR-10's size (timings only; 94% is then meaningless).

The whole run is held under --budget seconds (default 510, so < 9 min on one H100): the caps of the later
parts shrink to what is left, and a part with too little time left prints "skipped (time budget)".
Results: printed as rows as they come, again as one table at the end, and written as JSON to --out
(default bench/results/gpu-<date>.json). Exit status 0 when every part ran and every check passed, else 1.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import MONITOR_OFF as OFF  # noqa: E402
from engine.augment import torchvision_guide_transform  # noqa: E402
from engine.evaluate import tta_evaluate  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.optim import build_optimizer, build_scheduler  # noqa: E402
from engine.runtime.device import autocast_for, resolve_amp  # noqa: E402
from engine.spec import RunSpec, load_spec  # noqa: E402
from engine.store import Run  # noqa: E402
from engine.train import Trainer  # noqa: E402

TARGET = 0.94
PRESETS = ROOT / "cockpit" / "presets"
# used only when cockpit/presets/fast94.toml is absent: the quickstart spec plus these overrides
FAST94_FALLBACK = [
    "name=fast94", "model.name=fastnet", "schedule.name=onecycle", "schedule.pct_start=0.25",
    "optim.name=sgd", "optim.lr=1.0", "optim.momentum=0.9", "optim.nesterov=true", "optim.weight_decay=5e-4",
    "train.epochs=18", "train.batch_size=512", "train.label_smoothing=0.2", "train.amp=auto",
    "train.channels_last=true", "augment.flip=0.5", "augment.translate=2", "evaluate.tta=true",
    "evaluate.tta_views=['identity', 'flip', 'translate']",
]
PARTS = ("checks", "throughput", "fast94")
# every augmentation op on in the checks, so the sync check covers the whole batched pipeline
ALL_AUGMENT = ["augment.flip=0.5", "augment.translate=2", "augment.cutout=8", "augment.resized_crop.enabled=true",
               "augment.color_jitter.p=0.8", "augment.grayscale=0.2", "augment.rotation=15", "augment.erasing.p=0.5"]


def quiet(_msg: str) -> None:
    pass


# ------------------------------------------------------------------------------------ output


class Report:
    """Rows `figure | value | device`, printed as they come and kept for the table and the JSON."""

    def __init__(self, device_label: str):
        self.device = device_label
        self.rows: list[dict[str, Any]] = []
        self.failures: list[str] = []

    def row(self, figure: str, value: str, number: float | None = None, unit: str = "", ok: bool = True) -> None:
        r = {"figure": figure, "value": value, "device": self.device}
        if number is not None and math.isfinite(number):
            r["number"], r["unit"] = number, unit
        if not ok:
            r["failed"] = True
            self.failures.append(figure)
        self.rows.append(r)
        print(f"{figure} | {value} | {self.device}", flush=True)

    def table(self) -> str:
        w1 = max(len("figure"), *(len(r["figure"]) for r in self.rows))
        w2 = max(len("value"), *(len(r["value"]) for r in self.rows))
        w3 = max(len("device"), *(len(r["device"]) for r in self.rows))
        lines = [f"| {'figure':<{w1}} | {'value':<{w2}} | {'device':<{w3}} |", f"| {'-' * w1} | {'-' * w2} | {'-' * w3} |"]
        lines += [f"| {r['figure']:<{w1}} | {r['value']:<{w2}} | {r['device']:<{w3}} |" for r in self.rows]
        return "\n".join(lines)


class Budget:
    def __init__(self, seconds: float):
        self.start, self.total = time.perf_counter(), seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.total - self.elapsed()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores)"


def _where(f: traceback.FrameSummary) -> str:
    name = f.filename
    for base in (str(ROOT) + os.sep, *(p + os.sep for p in sys.path if p and "site-packages" in p)):
        if name.startswith(base):
            name = name[len(base):]
            break
    return f"{name}:{f.lineno} {f.name}"


def engine_frame(exc: BaseException) -> str:
    """Where an error came from: the innermost frame inside engine/, and the innermost frame of all if different."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    mine = [f for f in frames if f"{os.sep}engine{os.sep}" in f.filename]
    if not mine:
        return _where(frames[-1])
    text = _where(mine[-1])
    if frames[-1] is not mine[-1]:
        text += f" (innermost: {_where(frames[-1])})"
    return text


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


# -------------------------------------------------------------------------------------- data


def find_default_data() -> Path | None:
    for p in (ROOT / "shared" / "data" / "cifar10-jpg.tar.gz", ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"):
        if p.is_file():
            return p
    return None


def prepare_data(arg: str | None, smoke: bool, tmp: Path, report: Report) -> tuple[list[str], bool]:
    """Spec overrides for the data, and whether it is real CIFAR-10 (so 94% means something)."""
    if arg is None and smoke:
        return ["data.source=synthetic"], False
    if arg == "synthetic":
        sets = ["data.source=synthetic"]
        if not smoke:
            sets += ["data.synthetic_train=50000", "data.synthetic_test=10000"]
        report.row("data", "synthetic (timings only)")
        return sets, False
    path = Path(arg).expanduser() if arg else find_default_data()
    if path is None:
        raise SystemExit("bench/gpu.py: no CIFAR-10 data: pass --data DIR (an unpacked JPEG tree train/ test/) "
                         "or --data cifar10-jpg.tar.gz (or --data synthetic for timings only)")
    t0 = time.perf_counter()
    if path.is_file():
        if not tarfile.is_tarfile(path):
            raise SystemExit(f"bench/gpu.py: --data {path} is neither a folder nor a tar archive")
        dest = tmp / "cifar10"
        dest.mkdir()
        with tarfile.open(path) as tar:
            try:
                tar.extractall(dest, filter="data")
            except TypeError:  # Python without extraction filters
                tar.extractall(dest)
        root = next((d for d in [dest, *sorted(dest.rglob("*"))] if d.is_dir() and (d / "train").is_dir()
                     and (d / "test").is_dir()), None)
        if root is None:
            raise SystemExit(f"bench/gpu.py: {path} holds no train/ and test/ folders")
        how = f"{path.name} unpacked in {time.perf_counter() - t0:.1f} s"
    elif path.is_dir():
        root, how = path, str(path)
    else:
        raise SystemExit(f"bench/gpu.py: --data {path} does not exist")
    report.row("data", f"CIFAR-10 (JPEG copy): {how}")
    return ["data.source=cifar10", f"data.root={root}", "data.download=false"], True


# -------------------------------------------------------------------------------------- steps



def first_conv(model: torch.nn.Module) -> torch.nn.Module | None:
    return next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)


# ------------------------------------------------------------------------------------- checks


def set_cadence(tr: Trainer, every: int) -> None:
    """Sampled instruments every `every` steps (0: off), live: Trainer and Instruments read spec.monitor each step."""
    m = tr.spec.monitor
    m.grad_flow_every = m.activations_every = m.difficulty_every = every


SAMPLED = ("grad_norm/", "update_ratio/", "act/", "difficulty/")


def checked_steps(tr: Trainer, batches: list, sync_check: bool) -> BaseException | None:
    """Run the batches through train_step, under sync debug mode 'error' when asked; the sync error, if any."""
    if not sync_check:
        for xb, yb in batches:
            tr.train_step(xb, yb)
        return None
    torch.cuda.set_sync_debug_mode("error")
    try:
        for xb, yb in batches:
            tr.train_step(xb, yb)
    except RuntimeError as exc:
        return exc
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return None


def check_mode(report: Report, label: str, sets: list[str], cfg: Config, sync_check: bool) -> None:
    """Train a few steps in one mode. On CUDA the checked steps run under sync debug mode 'error': first
    plain steps (sampled instruments off), then steps with every sampled instrument every 2nd step."""
    t0 = time.perf_counter()
    spec = load_spec(None, cfg.check_sets + sets)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-check-") as tmp:
        run = Run.create(Path(tmp), spec)
        tr = Trainer(spec, run, log=quiet)
        try:
            dev = tr.device
            stream = tr.train_loader.forever()
            seen: dict[str, bool] = {}
            conv = first_conv(tr.model)

            def record_layout(_m, inp) -> None:  # a pre-hook must return None (else it replaces the input)
                seen.setdefault("input_cl", inp[0].is_contiguous(memory_format=torch.channels_last))

            hook = conv.register_forward_pre_hook(record_layout) if conv is not None else None
            set_cadence(tr, 2)  # warm up both paths: sampled (eager, hooks) and plain (compiled, if compiling)
            tw = time.perf_counter()
            for _ in range(cfg.check_warmup):
                tr.train_step(*next(stream))
            sync(dev)
            warm_s = time.perf_counter() - tw
            if hook is not None:
                hook.remove()
            tr.flush_window()

            # 1. plain steps: the step itself, no sampled instrument
            set_cadence(tr, 0)
            batches = [next(stream) for _ in range(cfg.check_steps)]
            sync(dev)
            ts = time.perf_counter()
            err = checked_steps(tr, batches, sync_check)
            sync(dev)
            step_ms = 1000 * (time.perf_counter() - ts) / cfg.check_steps
            where = "under set_sync_debug_mode('error')"
            if err is not None:
                report.row(f"check {label}: no host sync in train_step (instruments off)",
                           f"FAIL: {first_line(err)} at {engine_frame(err)}", ok=False)
                report.row(f"check {label}: no host sync in train_step (sampled instruments)", "not run (the plain step failed)")
                return
            tr.flush_window()
            loss = run.last_values().get("train_loss", float("nan"))
            finite = math.isfinite(loss)
            extra = ""
            if tr.scaler.is_enabled():
                extra = f", loss scale {tr.scaler.get_scale():g}"
            if tr.amp_dtype is not None:
                extra += f", autocast {str(tr.amp_dtype).removeprefix('torch.')}"
            if tr.spec.train.compile:
                extra += f", compile + warm-up {warm_s:.1f} s"
            report.row(f"check {label}: trains", f"{'pass' if finite else 'FAIL'} (loss {loss:.3f} after {tr.step} "
                       f"steps, {step_ms:.1f} ms/step{extra})", number=step_ms, unit="ms/step", ok=finite)
            if sync_check:
                report.row(f"check {label}: no host sync in train_step (instruments off)", f"pass ({cfg.check_steps} steps {where})")

            # 2. sampled steps: grad flow, activations and difficulty every 2nd step (the read excluded)
            set_cadence(tr, 2)
            batches = [next(stream) for _ in range(cfg.check_steps)]
            sync(dev)
            first_id = run.con.execute("SELECT COALESCE(MAX(id), 0) FROM metrics").fetchone()[0]
            err = checked_steps(tr, batches, sync_check)
            if err is not None:
                report.row(f"check {label}: no host sync in train_step (sampled instruments)",
                           f"FAIL: {first_line(err)} at {engine_frame(err)}", ok=False)
            else:
                tr.flush_window()
                _, rows = run.metrics_since(first_id)
                kinds = sorted({p.rstrip("/") for p in SAMPLED for r in rows if r.name.startswith(p)})
                ran = f"sampled: {', '.join(kinds) or 'NONE'}"
                if sync_check:
                    report.row(f"check {label}: no host sync in train_step (sampled instruments)",
                               f"pass ({cfg.check_steps} steps {where}; {ran})", ok=bool(kinds))
                else:
                    report.row(f"check {label}: sampled instruments run", f"{'pass' if kinds else 'FAIL'} ({ran})",
                               ok=bool(kinds))
            if tr.channels_last and conv is not None:
                w_cl = conv.weight.is_contiguous(memory_format=torch.channels_last)
                ok = w_cl and seen.get("input_cl", False)
                report.row(f"check {label}: channels_last",
                           f"{'pass' if ok else 'FAIL'} (first conv weight {'is' if w_cl else 'is NOT'}, input "
                           f"{'is' if seen.get('input_cl') else 'is NOT'} channels_last)", ok=ok)
        finally:
            run.close()
            del tr
    if cfg.verbose:
        print(f"  ({label}: {time.perf_counter() - t0:.1f} s)")


def part_checks(report: Report, cfg: Config) -> None:
    cuda = cfg.device.type == "cuda"
    label32 = "fp32" if cuda else "fp32 step on CPU"
    guarded(report, f"check {label32}", lambda: check_mode(report, label32, ["train.amp=off", "train.channels_last=false"],
                                                        cfg, sync_check=cuda))
    modes = [
        ("bf16 + channels_last", ["train.amp=bf16", "train.channels_last=true"]),
        ("fp16 + GradScaler + channels_last", ["train.amp=fp16", "train.channels_last=true"]),
    ]
    if cfg.compile:
        modes.append(("bf16 + channels_last + torch.compile",
                      ["train.amp=bf16", "train.channels_last=true", "train.compile=true", f"model.name={cfg.compile_model}"]))
    for label, sets in modes:
        if not cuda:
            report.row(f"check {label}", "skipped (no CUDA)")
            continue
        if "bf16" in label and not torch.cuda.is_bf16_supported():
            report.row(f"check {label}", "skipped (no bf16 on this GPU)")
            continue
        guarded(report, f"check {label}", lambda: check_mode(report, label, sets, cfg, sync_check=True))
    if not cfg.compile:
        report.row("check torch.compile", "skipped (--no-compile)")


# --------------------------------------------------------------------------------- throughput


class PILDataset(torch.utils.data.Dataset):
    """The same uint8 images as PIL images, labels alongside: what a torchvision pipeline reads."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform):
        from PIL import Image

        arr = x.permute(0, 2, 3, 1).contiguous().numpy()
        self.images = [Image.fromarray(a) for a in arr]
        self.labels = y.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


def time_loop(step: Callable[[], None], warmup: int, steps: int, cap: float, device: torch.device) -> tuple[int, float]:
    """(steps timed, seconds): `warmup` untimed steps, then up to `steps` steps or `cap` seconds."""
    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    n = 0
    while n < steps and time.perf_counter() - t0 < cap:
        step()
        n += 1
    sync(device)
    return n, time.perf_counter() - t0


def part_throughput(report: Report, cfg: Config, budget: Budget) -> None:
    spec = load_spec(PRESETS / "sgd_cosine.toml", cfg.data_sets + cfg.tput_sets)
    cap = max(min(cfg.tput_cap, (budget.left() - cfg.reserve_after_tput) / 3), 1.0)
    b = spec.train.batch_size
    label = f"{spec.model.name}, batch {b}"

    # engine: device-resident data, batched guide augmentation, default instruments, the read every N steps
    tr = Trainer(spec, None, log=quiet)
    dev = tr.device
    every = spec.monitor.every
    stream = tr.train_loader.forever()

    def engine_step() -> None:
        tr.train_step(*next(stream))
        if tr.step % every == 0:
            tr.flush_window()

    n, secs = time_loop(engine_step, cfg.tput_warmup, cfg.tput_steps, cap, dev)
    ips_engine = n * b / secs
    report.row(f"throughput engine: sgd_cosine {label}, guide augmentation on the device, default instruments",
               f"{ips_engine:,.0f} images/s ({n} steps in {secs:.1f} s)", number=ips_engine, unit="images/s")
    data = tr.data
    del tr, stream
    if dev.type == "cuda":
        torch.cuda.empty_cache()

    # torchvision: PIL images, the guide's Compose per image, DataLoader with every core
    workers = cfg.workers
    t0 = time.perf_counter()
    ds = PILDataset(data.train_x, data.train_y, torchvision_guide_transform(data.mean, data.std, size=data.train_x.shape[-1]))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=b, shuffle=True, drop_last=True, num_workers=workers, pin_memory=dev.type == "cuda",
        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
    )
    build_s = time.perf_counter() - t0

    def batches():
        while True:
            yield from loader

    it = batches()
    n_l, secs_l = time_loop(lambda: next(it), cfg.tput_warmup, cfg.tput_steps, cap, torch.device("cpu"))
    ips_loader = n_l * b / secs_l
    report.row(f"throughput torchvision DataLoader alone: guide Compose per PIL image, {workers} workers",
               f"{ips_loader:,.0f} images/s ({n_l} batches in {secs_l:.1f} s; dataset built in {build_s:.1f} s)",
               number=ips_loader, unit="images/s")

    torch.manual_seed(spec.train.seed)
    model = build_model(spec.model, data.num_classes).to(dev)
    amp_dtype, scaler_on = resolve_amp(spec.train.amp, dev)
    channels_last = spec.train.channels_last and dev.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, spec)
    sched = build_scheduler(opt, spec, len(loader))
    scaler = torch.amp.GradScaler(dev.type, enabled=scaler_on)
    ls = spec.train.label_smoothing

    def tv_step() -> None:
        x, y = next(it)
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_for(dev, amp_dtype):
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=ls)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()

    n_t, secs_t = time_loop(tv_step, cfg.tput_warmup, cfg.tput_steps, cap, dev)
    ips_tv = n_t * b / secs_t
    report.row(f"throughput torchvision: same {label}, AMP and optimizer, DataLoader {workers} workers, pinned",
               f"{ips_tv:,.0f} images/s ({n_t} steps in {secs_t:.1f} s)", number=ips_tv, unit="images/s")
    report.row("throughput engine / torchvision", f"{ips_engine / ips_tv:.2f}x", number=ips_engine / ips_tv, unit="x")
    del loader, it  # ends the persistent workers


# ------------------------------------------------------------------------------------- fast94


def fast94_spec(cfg: Config, instruments: bool) -> tuple[RunSpec, str]:
    preset = PRESETS / "fast94.toml"
    extra = cfg.data_sets + cfg.fast94_sets + ([] if instruments else OFF)
    if preset.is_file():
        return load_spec(preset, extra), "cockpit/presets/fast94.toml"
    return load_spec(None, FAST94_FALLBACK + extra), "fallback (cockpit/presets/fast94.toml absent): quickstart + " + " ".join(FAST94_FALLBACK)


def train_to_target(spec: RunSpec, cap: float) -> dict[str, Any]:
    """Trainer.fit() with a time cap; per-epoch test accuracy with its wall time since fit() began; TTA at the end."""
    t_build = time.perf_counter()
    tr = Trainer(spec, None, log=quiet)
    build_s = time.perf_counter() - t_build
    evals: list[tuple[float, int, float]] = []
    original = tr.eval_model
    t0 = 0.0

    def eval_model(model=None, split="test"):
        res = original(model, split)
        if model is None and split == "test":
            evals.append((time.perf_counter() - t0, tr.epoch, res.acc))
        return res

    tr.eval_model = eval_model  # evaluate_epoch() calls self.eval_model(): record each epoch's test accuracy
    timer = threading.Timer(cap, lambda: setattr(tr, "stop_request", ("stopped", f"time cap {cap:.0f} s")))
    timer.daemon = True
    t0 = time.perf_counter()
    timer.start()
    try:
        state = tr.fit()
    finally:
        timer.cancel()
    sync(tr.device)
    train_s = time.perf_counter() - t0
    out: dict[str, Any] = {"state": state, "build_s": build_s, "train_s": train_s, "evals": evals,
                           "steps": tr.step, "epochs": tr.epoch, "images": tr.step * spec.train.batch_size}
    ev = spec.evaluate
    if ev.tta and state == "finished":
        res = tta_evaluate(tr.model, tr.test_x, tr.test_y, tr.augment, views=ev.tta_views, translate=ev.tta_translate,
                           random_views=ev.tta_random_views, combine=ev.tta_combine, seed=spec.train.seed,
                           batch_size=spec.train.eval_batch_size, amp_dtype=tr.amp_dtype, channels_last=tr.channels_last)
        sync(tr.device)
        out["tta"] = (time.perf_counter() - t0, res["tta_acc"])
    del tr
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


def summarize(res: dict[str, Any], target: float) -> tuple[str, float | None]:
    hits = [(t, e, a) for t, e, a in res["evals"] if a >= target]
    if hits:
        t, e, a = hits[0]
        return f"{t:.1f} s (epoch {e}, test {a:.2%})", t
    if "tta" in res and res["tta"][1] >= target:
        t, a = res["tta"]
        return f"{t:.1f} s (end of training + TTA, {a:.2%})", t
    accs = [a for _, _, a in res["evals"]] + ([res["tta"][1]] if "tta" in res else [])
    if not accs:
        return f"not reached, no evaluation finished in {res['train_s']:.1f} s", None
    return f"not reached, best {max(accs):.2%} in {res['train_s']:.1f} s", None


def part_fast94(report: Report, cfg: Config, budget: Budget) -> None:
    spec_on, source = fast94_spec(cfg, instruments=True)
    spec_off, _ = fast94_spec(cfg, instruments=False)
    report.row("fast94 spec", source)
    m = spec_on.monitor
    if cfg.fast94_warmup:  # first-use costs (cuDNN plans, allocator) must not land on the first timed run
        tw = time.perf_counter()
        warm = spec_off.model_copy(deep=True)
        tr = Trainer(warm, None, log=quiet)
        stream = tr.train_loader.forever()
        for _ in range(cfg.fast94_warmup):
            tr.train_step(*next(stream))
        tr.eval_model()
        sync(tr.device)
        del tr, stream
        if cfg.verbose:
            print(f"  (fast94 warm-up: {time.perf_counter() - tw:.1f} s)")
    results = {}
    for key, spec, what in (("on", spec_on, f"instruments on: every={m.every} grad_flow={m.grad_flow_every} "
                                           f"activations={m.activations_every} difficulty={m.difficulty_every}"),
                            ("off", spec_off, "instruments off")):
        left = budget.left() - 5
        runs_left = 2 if key == "on" else 1
        cap = min(cfg.fast94_cap, left / runs_left)
        if cap < cfg.fast94_min:
            report.row(f"fast94 time to {TARGET:.0%} ({what})", f"skipped (time budget: {max(left, 0):.0f} s left)")
            continue
        res = guarded(report, f"fast94 ({what})", lambda: train_to_target(spec, cap))
        if res is None:
            continue
        results[key] = res
        text, secs = summarize(res, cfg.target)
        report.row(f"fast94 time to {cfg.target:.0%} ({what})", text, number=secs, unit="s")
        accs = [a for _, _, a in res["evals"]]
        final = f"test {accs[-1]:.2%}" if accs else "no eval"
        if "tta" in res:
            final += f", TTA {res['tta'][1]:.2%}"
        stopped = " (stopped at the time cap)" if res["state"] == "stopped" else ""
        ips = res["images"] / max(res["train_s"], 1e-9)
        report.row(f"fast94 run ({what})",
                   f"{res['epochs']} epochs, {res['steps']} steps in {res['train_s']:.1f} s{stopped}, {ips:,.0f} images/s "
                   f"incl. evals; {final}; Trainer built in {res['build_s']:.1f} s", number=res["train_s"], unit="s")
    if "on" in results and "off" in results:
        on, off = results["on"], results["off"]
        r = (off["train_s"] / max(off["steps"], 1)) / (on["train_s"] / max(on["steps"], 1))
        report.row("fast94 speed with instruments / without (per step, incl. evals)", f"{r:.3f}", number=r, unit="ratio")


# --------------------------------------------------------------------------------------- main


class Config:
    """Sizes and caps: the GPU defaults, or the tiny CPU smoke sizes."""

    def __init__(self, args, device: torch.device):
        self.device = device
        self.smoke = args.cpu_smoke
        self.verbose = args.verbose
        self.compile = not args.no_compile
        self.target = args.target
        self.workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
        dev = [f"train.device={device.type}"]
        if self.smoke:
            threads = ["train.threads=1"]
            tiny = ["model.name=tiny", "data.synthetic_test=128", "data.val_size=0"]  # data.source: from --data
            self.check_sets = dev + threads + tiny + ["data.source=synthetic", "data.synthetic_train=256", "train.batch_size=32",
                                                      *OFF, *ALL_AUGMENT]
            self.check_warmup, self.check_steps = 2, 2
            self.compile_model = "tiny"
            self.tput_sets = dev + threads + tiny + ["data.synthetic_train=512", "train.batch_size=32"]
            self.tput_steps, self.tput_warmup, self.tput_cap = 4, 1, min(args.tput_cap, 10.0)
            self.workers = min(self.workers, 2)
            self.fast94_sets = dev + threads + tiny + ["data.synthetic_train=512", "train.batch_size=64", "train.epochs=2"]
            self.fast94_cap, self.fast94_min, self.fast94_warmup = min(args.fast94_cap, 20.0), 1.0, 1
            self.reserve_after_tput = 0.0
        else:
            self.check_sets = dev + [
                f"model.name={args.check_model}", "data.source=synthetic", "data.synthetic_train=4096",
                "data.synthetic_test=256", "data.val_size=0", f"train.batch_size={args.check_batch}", *OFF, *ALL_AUGMENT,
            ]
            self.check_warmup, self.check_steps = 4, args.check_steps
            self.compile_model = args.compile_model
            self.tput_sets = dev
            self.tput_steps, self.tput_warmup, self.tput_cap = args.tput_steps, args.tput_warmup, args.tput_cap
            self.fast94_sets = dev + ([f"train.epochs={args.fast94_epochs}"] if args.fast94_epochs else [])
            self.fast94_cap, self.fast94_min, self.fast94_warmup = args.fast94_cap, 20.0, 20
            self.reserve_after_tput = 2 * 20.0 + 30  # keep room for the fast94 runs
        self.data_sets: list[str] = []


def guarded(report: Report, what: str, fn: Callable[[], Any]) -> Any:
    """Run one part (or sub-part); a failure becomes a FAIL row and the script goes on."""
    try:
        return fn()
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - a benchmark reports every failure and carries on
        report.row(what, f"FAIL: {first_line(exc)} at {engine_frame(exc)}", ok=False)
        if os.environ.get("BENCH_TRACEBACK"):
            traceback.print_exc()
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="run every part on CPU with tiny sizes (synthetic data)")
    ap.add_argument("--data", default=None, help="CIFAR-10 JPEG tree, or its .tar.gz, or 'synthetic'")
    ap.add_argument("--out", default=None, help="JSON results (default bench/results/gpu-<date>.json)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--budget", type=float, default=510.0, help="seconds for the whole script (default 510)")
    ap.add_argument("--target", type=float, default=TARGET, help="fast94 accuracy target (default 0.94)")
    ap.add_argument("--check-model", default="resnet18", help="model of the CUDA checks (ReLU nets exercise the activation hooks)")
    ap.add_argument("--check-batch", type=int, default=128)
    ap.add_argument("--check-steps", type=int, default=6, help="steps under sync debug mode per AMP mode")
    ap.add_argument("--compile-model", default="fastnet", help="model of the torch.compile check")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile check")
    ap.add_argument("--tput-steps", type=int, default=600, help="timed steps per throughput side")
    ap.add_argument("--tput-warmup", type=int, default=30)
    ap.add_argument("--tput-cap", type=float, default=40.0, help="seconds per throughput side at most")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: all cores)")
    ap.add_argument("--fast94-cap", type=float, default=150.0, help="seconds per fast94 run at most")
    ap.add_argument("--fast94-epochs", type=int, default=0, help="override fast94's epochs (0: the preset's)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        ap.error(f"unknown part(s) {', '.join(bad)}; valid: {', '.join(PARTS)}")

    budget = Budget(args.budget)
    if args.cpu_smoke:
        device = torch.device("cpu")
        torch.set_num_threads(1)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        print("bench/gpu.py: no CUDA device here; the full sizes are for a GPU. "
              "Run `bench/gpu.py --cpu-smoke` for the CPU version.", file=sys.stderr)
        return 2
    report = Report(device_label(device))
    cfg = Config(args, device)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"gpu-{stamp}.json"
    print(f"bench/gpu.py{' --cpu-smoke' if args.cpu_smoke else ''}: torch {torch.__version__}, "
          f"CUDA {torch.version.cuda or '-'}, {report.device}, python {platform.python_version()}; "
          f"parts {','.join(parts)}; budget {args.budget:.0f} s", flush=True)
    print("figure | value | device", flush=True)
    if device.type == "cuda":
        report.row("GPU", f"{torch.cuda.get_device_name(device)}, {torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} GiB, "
                   f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")
    else:
        report.row("GPU", "none (CPU run)")
    tmp = tempfile.TemporaryDirectory(prefix="bench-gpu-")
    crashed = False
    try:
        need_data = any(p in parts for p in ("throughput", "fast94"))
        real = False
        if need_data:
            cfg.data_sets, real = prepare_data(args.data, args.cpu_smoke, Path(tmp.name), report)
        if "checks" in parts:
            crashed |= guarded(report, "checks", lambda: part_checks(report, cfg) or True) is None
        if "throughput" in parts:
            crashed |= guarded(report, "throughput", lambda: part_throughput(report, cfg, budget) or True) is None
        if "fast94" in parts:
            if not real:
                report.row("fast94 note", f"synthetic data: the {cfg.target:.0%} target is not meaningful")
            crashed |= guarded(report, "fast94", lambda: part_fast94(report, cfg, budget) or True) is None
    finally:
        tmp.cleanup()
        report.row("total wall time", f"{budget.elapsed():.1f} s", number=budget.elapsed(), unit="s")
        print("\n" + report.table())
        payload = {
            "created": _dt.datetime.now().isoformat(timespec="seconds"), "device": report.device,
            "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "argv": sys.argv[1:] if argv is None else argv, "cpu_smoke": args.cpu_smoke, "rows": report.rows,
        }
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
            print(f"\nresults written to {out}")
        except OSError as exc:
            print(f"\ncannot write {out}: {exc}", file=sys.stderr)
    if report.failures:
        print(f"{len(report.failures)} failure(s): {', '.join(report.failures)}", file=sys.stderr)
    return 1 if crashed or report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
