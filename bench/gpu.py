"""GPU benchmark and CUDA-path check: one script, every figure a `figure | value | device` row.

    python bench/gpu.py [--data DIR|TARBALL|download|synthetic] [--out FILE.json] [--parts fast94,checks,whole-run,throughput]
                        [--budget S] [--seeds N] [--tput-steps N] [--tput-cap S] [--workers N] [--no-compile]
    python bench/gpu.py --cpu-smoke        # the same parts on CPU, tiny sizes

Parts, in this order (each one guarded: a part that breaks prints a FAIL row and the next part runs):

1. fast94 (bench/gpu_fast94.py), first, so it runs in a process that has compiled nothing, as the worker
   of `cockpit run fast94` does: fast94 as shipped, fast94 lean and airbench94 in rotation after one
   discarded warm-up each, --seeds seeds per side; where the time goes; dynamo's counts around every
   seed (a recompile after the warm-up FAILs); accuracy differences with 95% intervals.
2. checks (bench/gpu_checks.py): `Trainer.train_step` on synthetic data, every augmentation op on: fp32,
   bf16 + channels_last, fp16 + GradScaler + channels_last, and bf16 + channels_last + torch.compile. Per
   mode: it trains; no host sync; compiled: no recompile in the timed steps; channels_last.
3. whole-run (bench/engine_overhead.py --whole-run): a fast94-shaped run against a bare loop of the same
   math, `whole-run engine/bare: R`.
4. throughput (bench/gpu_throughput.py): sgd_cosine images/s through the engine vs a torchvision
   DataLoader with the guide's Compose, and that DataLoader alone.

Data (bench/gpu_data.py): torchvision's CIFAR-10 where it can be had, else the JPEG copy
(cifar10-jpg.tar.gz), looked for in $COCKPIT_DATA, ~/.cache/cockpit/data, ./.data, ./shared/data and
../shared/data; the `data` row says which set was used.

The run is held under --budget seconds (default 330, for a call wrapped in `timeout -s INT 360`). The JSON
(--out, default bench/results/gpu-<date>.json) is rewritten after every row, so a killed call still
leaves its seeds; SIGINT ends the run at once with a summary. Exit 0 when every part ran and every check
passed, else 1.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import MONITOR_OFF as OFF  # noqa: E402
from bench.gpu_checks import part_checks  # noqa: E402
from bench.gpu_data import prepare_data  # noqa: E402
from bench.gpu_fast94 import part_fast94  # noqa: E402
from bench.gpu_report import Budget, Report, device_label, guarded  # noqa: E402
from bench.gpu_throughput import part_throughput  # noqa: E402

TARGET = 0.94
PARTS = ("fast94", "checks", "whole-run", "throughput")
# every augmentation op on in the checks, so the sync check covers the whole batched pipeline
ALL_AUGMENT = ["augment.flip=0.5", "augment.translate=2", "augment.cutout=8", "augment.resized_crop.enabled=true",
               "augment.color_jitter.p=0.8", "augment.grayscale=0.2", "augment.rotation=15", "augment.erasing.p=0.5"]


class Config:
    """Sizes and caps: the GPU defaults, or the tiny CPU smoke sizes."""

    def __init__(self, args, device: torch.device):
        self.device, self.smoke, self.verbose = device, args.cpu_smoke, args.verbose
        self.compile, self.target, self.seeds = not args.no_compile, args.target, args.seeds
        self.workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
        dev = [f"train.device={device.type}"]
        self.data_sets: list[str] = []
        if self.smoke:
            tiny = ["train.threads=1", "model.name=tiny", "data.synthetic_test=128", "data.val_size=0"]
            self.check_sets = dev + tiny + ["data.source=synthetic", "data.synthetic_train=256", "train.batch_size=32",
                                            *OFF, *ALL_AUGMENT]
            self.check_warmup, self.check_steps, self.compile_model = 2, 2, "tiny"
            self.tput_sets = dev + tiny + ["data.synthetic_train=512", "train.batch_size=32", "evaluate.calibrate=false"]
            self.tput_steps, self.tput_warmup, self.tput_cap = 4, 1, min(args.tput_cap, 10.0)
            self.workers = min(self.workers, 2)
            # the preset's model and options at CPU size; compiling is timed in the checks (torch.compile on CPU)
            self.fast94_sets = dev + ["train.threads=1", "data.synthetic_train=512", "data.synthetic_test=256",
                                      "model.width=0.125", "train.batch_size=64", "train.epochs=2", "train.compile=false"]
            self.reserve_after_tput = self.reserve_after_fast94 = 0.0
            self.seeds = min(self.seeds, 2)
            self.whole_run = ["--whole-run", "--device", "cpu", "--pairs", "1", "--steps", "4", "--batch", "32", "--epochs", "2"]
        else:
            self.check_sets = dev + [f"model.name={args.check_model}", "data.source=synthetic", "data.synthetic_train=4096",
                                     "data.synthetic_test=256", "data.val_size=0", f"train.batch_size={args.check_batch}",
                                     *OFF, *ALL_AUGMENT]
            self.check_warmup, self.check_steps, self.compile_model = 4, args.check_steps, args.compile_model
            self.tput_sets = dev
            self.tput_steps, self.tput_warmup, self.tput_cap = args.tput_steps, args.tput_warmup, args.tput_cap
            self.fast94_sets = dev + ([f"train.epochs={args.fast94_epochs}"] if args.fast94_epochs else [])
            self.reserve_after_tput = 0.0
            self.reserve_after_fast94 = args.reserve  # room for the checks after the seeds
            # fast94's size, eager: about 5 s a run, a warm-up and 3 pairs of each side
            self.whole_run = ["--whole-run", "--device", "cuda", "--batch", "1024", "--steps", "48", "--pairs", "3"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="run every part on CPU with tiny sizes (synthetic data)")
    ap.add_argument("--data", default=None, help="CIFAR-10 folder or tarball (torchvision's or the JPEG copy), 'download' or 'synthetic'")
    ap.add_argument("--out", default=None, help="JSON results (default bench/results/gpu-<date>.json)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--budget", type=float, default=330.0, help="seconds for the whole script (default 330)")
    ap.add_argument("--target", type=float, default=TARGET, help="fast94 accuracy target (default 0.94)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds per side: fast94, fast94 lean, airbench94 (default 10)")
    ap.add_argument("--reserve", type=float, default=60.0, help="seconds the fast94 seeds leave for the next parts")
    ap.add_argument("--fast94-epochs", type=int, default=0, help="override fast94's epochs (0: the preset's)")
    ap.add_argument("--check-model", default="resnet18", help="model of the CUDA checks (ReLU nets exercise the activation hooks)")
    ap.add_argument("--check-batch", type=int, default=128)
    ap.add_argument("--check-steps", type=int, default=6, help="steps under sync debug mode per AMP mode")
    ap.add_argument("--compile-model", default="fastnet", help="model of the torch.compile check")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile check")
    ap.add_argument("--tput-steps", type=int, default=300, help="timed steps per throughput side")
    ap.add_argument("--tput-warmup", type=int, default=20)
    ap.add_argument("--tput-cap", type=float, default=15.0, help="seconds per throughput side at most")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: all cores)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    args.part_list = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in args.part_list if p not in PARTS]
    if bad:
        ap.error(f"unknown part(s) {', '.join(bad)}; valid: {', '.join(PARTS)}")
    return args


def run_parts(report: Report, cfg: Config, args, budget: Budget, tmp: Path) -> bool:
    """Every part asked for; True if one crashed outright."""
    parts, crashed, real = args.part_list, False, False
    if any(p in parts for p in ("throughput", "fast94")):
        cfg.data_sets, real = prepare_data(args.data, args.cpu_smoke, tmp, report)
    if "fast94" in parts:  # first: nothing compiled before it, as in a worker
        if not real:
            report.row("fast94 note", "synthetic data: accuracies are not meaningful, timings are")
        crashed |= guarded(report, "fast94", lambda: part_fast94(report, cfg, budget, tmp) or True) is None
    for name, part in (("checks", lambda: part_checks(report, cfg)), ("whole-run", lambda: part_whole_run(report, cfg, budget)),
                       ("throughput", lambda: part_throughput(report, cfg, budget))):
        if name not in parts:
            continue
        if budget.left() < 20:
            report.row(name, f"skipped (budget: {budget.left():.0f} s left)")
            continue
        crashed |= guarded(report, name, lambda: part() or True) is None
    return crashed


def part_whole_run(report: Report, cfg, budget: Budget) -> None:
    """bench/engine_overhead.py --whole-run in a child process (its own compile state), its last line a row."""
    import subprocess

    cmd = [sys.executable, str(ROOT / "bench" / "engine_overhead.py"), *cfg.whole_run]
    need = 20.0 if cfg.smoke else 90.0  # a warm-up and the pairs of fast94-sized runs
    if budget.left() < need:
        report.row("whole-run engine/bare", f"skipped (budget: {budget.left():.0f} s left, it needs about {need:.0f} s)")
        return
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=budget.left(), cwd=ROOT)
    except subprocess.TimeoutExpired:
        report.row("whole-run engine/bare", "cut by the budget before its last pair (rerun: --parts whole-run)")
        return
    lines = res.stdout.strip().splitlines()
    for line in lines:
        if line.startswith("whole-run part "):
            report.row(line.split(":")[0], line.split(":", 1)[1].strip())
    last = lines[-1] if lines else ""
    ok = res.returncode == 0 and last.startswith("whole-run engine/bare: ")
    if not ok:
        report.row("whole-run engine/bare", f"FAIL: exit {res.returncode}: {(res.stderr or last).strip().splitlines()[-1:]}",
                   ok=False)
        return
    r = float(last.split(":")[1].split()[0])
    report.row("whole-run engine/bare", f"{r:.3f} (median of interleaved pairs; goal >= 0.97)", number=r, unit="x")


def write_json(out: Path, report: Report, args, argv: list[str] | None, final: bool = False) -> None:
    """The rows so far (and, at the end, the summary), written to a temp file and renamed: never half a file."""
    payload = {"created": _dt.datetime.now().isoformat(timespec="seconds"), "device": report.device,
               "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
               "argv": sys.argv[1:] if argv is None else argv, "cpu_smoke": args.cpu_smoke, "complete": final,
               "rows": report.rows}
    if final:
        payload["summary"] = summary_lines(report)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out)
        if final:
            print(f"\nresults written to {out}")
    except OSError as exc:
        print(f"\ncannot write {out}: {exc}", file=sys.stderr)


SUMMARY = ("fresh process", "fast94 (", "fast94 lean (", "airbench94 (", "fast94 time /", "fast94 lean time /",
           "fast94 where", "fast94 lean where", "RECOMPILE", "whole-run engine/bare", "fast94 seeds")


def summary_lines(report: Report) -> list[str]:
    """The compact summary: the headline rows, and every failure."""
    rows = [r for r in report.rows if r["figure"].startswith(SUMMARY) or r.get("failed")]
    return [f"{r['figure']}: {r['value']}" for r in rows]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
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
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"gpu-{_dt.datetime.now():%Y%m%d-%H%M%S}.json"
    report = Report(device_label(device), save=lambda r: write_json(out, r, args, argv))
    cfg = Config(args, device)
    print(f"bench/gpu.py{' --cpu-smoke' if args.cpu_smoke else ''}: torch {torch.__version__}, CUDA {torch.version.cuda or '-'}, "
          f"{report.device}, python {platform.python_version()}; parts {','.join(args.part_list)}; budget {args.budget:.0f} s",
          flush=True)
    print("figure | value | device", flush=True)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        report.row("GPU", f"{props.name}, {props.total_memory / 2**30:.0f} GiB, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")
    else:
        report.row("GPU", "none (CPU run)")
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        try:
            crashed = run_parts(report, cfg, args, budget, Path(tmp))
        except KeyboardInterrupt:  # timeout -s INT: what ran is kept, the summary still comes
            report.row("interrupted", f"SIGINT after {budget.elapsed():.0f} s: the rows above are complete", ok=False)
            crashed = True
        finally:
            report.row("total wall time", f"{budget.elapsed():.1f} s", number=budget.elapsed(), unit="s")
            print("\n" + report.table())
            write_json(out, report, args, argv, final=True)
            print("\nsummary:\n" + "\n".join(summary_lines(report)), flush=True)
    if report.failures:
        print(f"{len(report.failures)} failure(s): {', '.join(report.failures)}", file=sys.stderr)
    return 1 if crashed or report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
