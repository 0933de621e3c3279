"""The run.db projection for bench/instruments.py: rows and bytes per step from a short real run,
scaled to a preset's full run."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from engine.spec import RunSpec, load_spec
from engine.store import Run
from engine.train import Trainer

ROOT = Path(__file__).resolve().parent.parent


def db_bytes(db: Path) -> dict[str, int]:
    """Bytes per table/index (dbstat), after folding the WAL into the main file."""
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        try:
            return {name: int(size) for name, size in con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")}
        except sqlite3.OperationalError:  # SQLite built without dbstat
            return {"(file)": db.stat().st_size}
    finally:
        con.close()


EVAL_ROWS = ("test_", "val_", "swa_")


def storage(args) -> dict:
    """Rows per step and bytes per row from a real short run; run.db projected to the preset's full run."""
    preset = Path(args.storage_preset)
    if not preset.is_file():
        preset = ROOT / "presets" / f"{args.storage_preset}.toml"
    full = load_spec(preset)
    short = short_run(args, preset, full)
    return project(short, full)


def short_run(args, preset: Path, full: RunSpec) -> dict:
    """A real `Trainer.fit()` of the preset's architecture, narrowed and on 16x16 synthetic images,
    at the preset's cadences: its metric rows by kind and run.db's bytes per row."""
    spe_small, batch_small, epochs_small = args.storage_steps, 8, args.storage_epochs
    small_sets = [
        "data.source=synthetic", f"data.synthetic_train={spe_small * batch_small}", "data.synthetic_test=64",
        "data.image_size=16", f"data.val_size={min(full.data.val_size, 64)}", f"train.batch_size={batch_small}",
        f"train.epochs={epochs_small}", "train.device=cpu", "model.width=0.125", "monitor.tensorboard=false",
        "swa.enabled=false", "evaluate.tta=false", "evaluate.calibrate=false",
    ]
    if args.threads:
        small_sets.append(f"train.threads={args.threads}")
    if full.data.val_size:
        small_sets[1] = f"data.synthetic_train={spe_small * batch_small + min(full.data.val_size, 64)}"
    spec = load_spec(preset, small_sets)
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        run = Run.create(Path(tmp), spec)
        t0 = time.perf_counter()
        Trainer(spec, run, log=lambda _m: None).fit()
        secs = time.perf_counter() - t0
        con = run.con
        rows = con.execute("SELECT name, COUNT(*) FROM metrics GROUP BY name").fetchall()
        steps = con.execute("SELECT MAX(step) FROM metrics").fetchone()[0]
        n_results = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        run.close()
        sizes = db_bytes(run.db_path)
        file_size = run.db_path.stat().st_size
    train_rows = sum(c for n, c in rows if not n.startswith(EVAL_ROWS))
    eval_rows = sum(c for n, c in rows if n.startswith(EVAL_ROWS))
    total_rows = train_rows + eval_rows
    if "metrics" in sizes:
        metric_bytes = sizes.get("metrics", 0) + sizes.get("metrics_name_step", 0)
        results_bytes = sizes.get("results", 0)
    else:
        metric_bytes, results_bytes = sizes["(file)"], 0
    rows_per_step = train_rows / max(steps, 1)
    return {"spec": spec, "secs": secs, "steps": steps, "epochs": epochs_small, "steps_per_epoch": spe_small,
            "train_rows": train_rows, "eval_rows": eval_rows, "n_results": n_results, "file_size": file_size,
            "bytes_per_row": metric_bytes / max(total_rows, 1), "results_per_epoch": results_bytes / epochs_small,
            "rows_per_step": rows_per_step, "eval_rows_per_epoch": eval_rows / epochs_small,
            # CUDA runs add memory_gb to every read (CPU runs, like this one, do not)
            "cuda_rows_per_step": rows_per_step + 1 / spec.monitor.every}


def project(short: dict, full: RunSpec) -> dict:
    """Print the short run's figures and run.db projected to the preset's full run (and 80,000 steps)."""
    spec, steps, epochs_small, spe_small = short["spec"], short["steps"], short["epochs"], short["steps_per_epoch"]
    train_rows, eval_rows, bytes_per_row = short["train_rows"], short["eval_rows"], short["bytes_per_row"]
    rows_per_step, cuda_rows_per_step = short["rows_per_step"], short["cuda_rows_per_step"]
    results_per_epoch, eval_rows_per_epoch = short["results_per_epoch"], short["eval_rows_per_epoch"]
    secs, n_results, file_size = short["secs"], short["n_results"], short["file_size"]
    # the full run: CIFAR-10/100 have 50,000 training images, less the validation split
    n_train = 50_000 - full.data.val_size
    spe = n_train // full.train.batch_size
    full_steps = full.train.epochs * spe

    def size_of(total_steps: int) -> float:
        epochs = full.train.epochs
        return (cuda_rows_per_step * total_steps + eval_rows_per_epoch * epochs) * bytes_per_row + results_per_epoch * epochs

    print(f"\nrun.db storage (short real run: {spec.model.name} x{spec.model.width} on 16x16 synthetic, "
          f"{epochs_small} epochs x {spe_small} steps, {spec.name}'s cadences every={spec.monitor.every} "
          f"grad_flow={spec.monitor.grad_flow_every} activations={spec.monitor.activations_every} "
          f"difficulty={spec.monitor.difficulty_every}; {secs:.1f} s)")
    print(f"  metric rows: {train_rows:,} training + {eval_rows:,} eval over {steps} steps; {n_results} results; "
          f"run.db {file_size / 1024:,.0f} KiB")
    print(f"  rows per step: {rows_per_step:.2f} (CPU) -> {cuda_rows_per_step:.2f} on CUDA (+ memory_gb per read)")
    print(f"  bytes per metric row (metrics table + (name, step) index, dbstat): {bytes_per_row:.1f}")
    print(f"  results (hardest examples) per epoch: {results_per_epoch / 1024:.1f} KiB")
    table = []
    for label, total_steps in ((f"{full.name}: {full.train.epochs} epochs x {spe} steps "
                                f"({n_train:,} train / batch {full.train.batch_size})", full_steps),
                               ("80,000 steps (the round figure)", 80_000)):
        size = size_of(total_steps)
        rows_total = cuda_rows_per_step * total_steps + eval_rows_per_epoch * full.train.epochs
        table.append((label, total_steps, rows_total, size))
        print(f"  projected run.db for {label}: {rows_total / 1e6:.2f} M rows, {size / 2**20:,.1f} MiB")
    return {"rows_per_step": rows_per_step, "cuda_rows_per_step": cuda_rows_per_step, "bytes_per_row": bytes_per_row,
            "results_bytes_per_epoch": results_per_epoch, "eval_rows_per_epoch": eval_rows_per_epoch,
            "projections": [{"label": lb, "steps": st, "rows": rw, "bytes": sz} for lb, st, rw, sz in table]}
