"""GPU benchmark and CUDA-path check (issues #10, #18): one script, every figure a `figure | value | device` row.

    python bench/gpu.py [--data DIR|TARBALL|download|synthetic] [--out FILE.json] [--parts checks,throughput,fast94]
                        [--budget S] [--seeds N] [--tput-steps N] [--tput-cap S] [--workers N] [--no-compile]
    python bench/gpu.py --cpu-smoke        # the same code paths on CPU, tiny sizes, about a minute

Parts, in this order (each one guarded: a part that breaks prints a FAIL row and the next part runs):

1. checks (bench/gpu_checks.py): `Trainer.train_step` on synthetic data, every augmentation op on: fp32,
   bf16 + channels_last, fp16 + GradScaler + channels_last, and bf16 + channels_last + torch.compile. Per
   mode: it trains; no host sync (steps under `torch.cuda.set_sync_debug_mode("error")`, plain, then with
   every sampled instrument every 2nd step); compiled: no recompile in the timed steps (dynamo's
   `error_on_recompile`), compile + warm-up time apart; channels_last weight and prepared input.
2. throughput (bench/gpu_throughput.py): sgd_cosine images/s through the engine vs a torchvision
   DataLoader with the guide's Compose, and that DataLoader alone.
3. fast94 (bench/gpu_fast94.py): fast94 as a real run (store, checkpoints, the TTA pass) over --seeds
   seeds with fixed epochs, final TTA accuracy mean +- std, train + TTA time with compile apart, against
   airbench94's own train94 in this process on the same images; the ratio of the mean times.

Data (bench/gpu_data.py): torchvision's CIFAR-10 where it can be had (a folder holding
cifar-10-batches-py/, or cifar-10-python.tar.gz; `--data download` fetches it), else the JPEG copy
(cifar10-jpg.tar.gz), looked for in $COCKPIT_DATA, ~/.cache/cockpit/data, ./.data, ./shared/data and
../shared/data; the `data` row and the fast94 spec row say which set was used.

The whole run is held under --budget seconds (default 330: about 5 minutes of GPU work, so a rerun fits
a 15-minute lease): the throughput caps shrink to what is left, and fast94 runs as many of its seeds as fit.
Results: printed as rows as they come, again as one table at the end, and written as JSON to --out
(default bench/results/gpu-<date>.json). Exit status 0 when every part ran and every check passed, else 1.
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
PARTS = ("checks", "throughput", "fast94")
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
            self.reserve_after_tput = 0.0
            self.seeds = min(self.seeds, 2)
        else:
            self.check_sets = dev + [f"model.name={args.check_model}", "data.source=synthetic", "data.synthetic_train=4096",
                                     "data.synthetic_test=256", "data.val_size=0", f"train.batch_size={args.check_batch}",
                                     *OFF, *ALL_AUGMENT]
            self.check_warmup, self.check_steps, self.compile_model = 4, args.check_steps, args.compile_model
            self.tput_sets = dev
            self.tput_steps, self.tput_warmup, self.tput_cap = args.tput_steps, args.tput_warmup, args.tput_cap
            self.fast94_sets = dev + ([f"train.epochs={args.fast94_epochs}"] if args.fast94_epochs else [])
            self.reserve_after_tput = 200.0  # keep room for the fast94 seeds


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="run every part on CPU with tiny sizes (synthetic data)")
    ap.add_argument("--data", default=None, help="CIFAR-10 folder or tarball (torchvision's or the JPEG copy), 'download' or 'synthetic'")
    ap.add_argument("--out", default=None, help="JSON results (default bench/results/gpu-<date>.json)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--budget", type=float, default=330.0, help="seconds for the whole script (default 330)")
    ap.add_argument("--target", type=float, default=TARGET, help="fast94 accuracy target (default 0.94)")
    ap.add_argument("--seeds", type=int, default=5, help="fast94 and airbench94 seeds (default 5)")
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
    if "checks" in parts:
        crashed |= guarded(report, "checks", lambda: part_checks(report, cfg) or True) is None
    if "throughput" in parts:
        crashed |= guarded(report, "throughput", lambda: part_throughput(report, cfg, budget) or True) is None
    if "fast94" in parts:
        if not real:
            report.row("fast94 note", f"synthetic data: the {cfg.target:.0%} target is not meaningful")
        crashed |= guarded(report, "fast94", lambda: part_fast94(report, cfg, budget, tmp) or True) is None
    return crashed


def write_json(out: Path, report: Report, args, argv: list[str] | None) -> None:
    payload = {"created": _dt.datetime.now().isoformat(timespec="seconds"), "device": report.device,
               "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
               "argv": sys.argv[1:] if argv is None else argv, "cpu_smoke": args.cpu_smoke, "rows": report.rows}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nresults written to {out}")
    except OSError as exc:
        print(f"\ncannot write {out}: {exc}", file=sys.stderr)


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
    report, cfg = Report(device_label(device)), Config(args, device)
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"gpu-{_dt.datetime.now():%Y%m%d-%H%M%S}.json"
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
        finally:
            report.row("total wall time", f"{budget.elapsed():.1f} s", number=budget.elapsed(), unit="s")
            print("\n" + report.table())
            write_json(out, report, args, argv)
    if report.failures:
        print(f"{len(report.failures)} failure(s): {', '.join(report.failures)}", file=sys.stderr)
    return 1 if crashed or report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
