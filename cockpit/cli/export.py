"""From run to use: `cockpit export RUN` writes the model for deployment, `cockpit predict RUN IMAGE...`
classifies image files (or a folder's images) with it. torch is imported only inside the commands (the CLI must start fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cockpit.core.formats import fmt_pct_std
from engine.contracts import UsageError
from engine.store import StoreError

from .common import RunArg, RunsDirOpt, console, fail, open_run

CheckpointOpt = typer.Option("best", "--checkpoint", "-c",
                             help="best, last or swa (best falls back to last, and last to best).")


def export_command(run_ref: str = RunArg, checkpoint: str = CheckpointOpt,
                   runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Write RUN's model as safetensors and ONNX, with normalization and the calibrated temperature
    built in, and a JSON model card, to runs/<id>/export/."""
    r = open_run(run_ref, runs_dir)
    from engine.export import export_run

    with console.status(f"export: loading {r.run_id}") as status:
        try:
            out = export_run(r, checkpoint, log=lambda msg: status.update(f"export: {msg}"))
        except (UsageError, StoreError, ValueError) as exc:
            fail(f"export of {r.run_id}: {exc}")
    card = out.card
    t = Table(title=f"exported {r.run_id} ({card['checkpoint']}, step {card['step']})", title_justify="left",
              header_style="bold", show_header=False)
    t.add_column("", style="bold", no_wrap=True)
    t.add_column("", overflow="fold")  # paths are folded, never cut
    acc, tta = card["accuracy"]["test"], card["accuracy"]["test_with_tta"]
    chosen = {"val_acc": ", best.pt chosen on validation accuracy",
              "last evaluation": ", best.pt is the last evaluation (no validation split)"}.get(card["chosen_by"] or "", "")
    t.add_row("test accuracy", (f"{acc:.2%} on {card['accuracy']['test_images']:,} images (as measured at step "
                                f"{card['step']:,}{chosen})") if acc is not None
              else f"not measured at step {card['step']:,} (no evaluation there)")
    seeds = card["accuracy"]["tta_seeds"]
    said = (f", seeds {seeds[0]}-{seeds[-1]}, mean ± sample std" if len(seeds) > 1 else f", seed {seeds[0]}" if seeds else "")
    t.add_row("with TTA", f"{fmt_pct_std(tta, card['accuracy']['test_with_tta_std'])} (measured by cockpit tta{said})"
              if tta is not None else "not measured (cockpit tta)")
    t.add_row("temperature", f"{card['temperature']:.4f} ({card['calibration']}; by {card['calibration_method']})"
              if card["calibrated"]
              else f"1 ({card['calibration']})")
    if card["ece"]:
        t.add_row("ECE", f"{card['ece']['before']:.2%} -> {card['ece']['after']:.2%}")
    t.add_row("input", f"float32 {'x'.join(map(str, card['input']['shape']))} in [0, 1], RGB")
    for kind, name in card["files"].items():
        t.add_row(kind, str(out.folder / name))
    console.print(t)


def predict_command(run_ref: str = RunArg,
                    images: list[Path] = typer.Argument(..., metavar="IMAGE...", help="Image files (any size; resized), "
                                                        "or folders: each folder's images, sorted by name."),
                    top_k: int = typer.Option(3, "--top-k", "-k", min=1, max=1000, help="Classes to show per image."),
                    checkpoint: str = CheckpointOpt, runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Top-k classes with calibrated probabilities for each image, from RUN's model."""
    r = open_run(run_ref, runs_dir)
    from engine.export import predict_images

    images = image_files(images)
    with console.status(f"predict: loading {r.run_id}"):
        try:
            rows = predict_images(r, images, checkpoint, top_k)
        except (UsageError, StoreError, ValueError) as exc:
            fail(f"predict with {r.run_id}: {exc}")
    first = rows[0]
    how = f"temperature {first['temperature']:.3f} {first['calibration']}" if first["calibrated"] else first["calibration"]
    t = Table(header_style="bold", title_justify="left", title=f"{r.run_id} ({first['checkpoint']}, step {first['step']:,}, {how})")
    t.add_column("image", overflow="fold")
    t.add_column("rank", justify="right")
    t.add_column("class")
    t.add_column("probability", justify="right")
    for row in rows:
        for rank, (cls, p) in enumerate(row["top"], 1):
            t.add_row(row["image"] if rank == 1 else "", str(rank), cls, f"{p:.2%}", end_section=rank == len(row["top"]))
    console.print(t)


def image_files(paths: list[Path]) -> list[Path]:
    """What to classify: each file as given, each folder as its images sorted by name (its other files
    and its subfolders left out); a folder with no image exits 2 saying so."""
    from engine.data.folder import IMAGE_EXTENSIONS

    out: list[Path] = []
    for p in paths:
        if not p.is_dir():
            out.append(p)  # a missing or unreadable file is named by the prediction itself
            continue
        try:
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS
                           and not f.name.startswith(".") and f.is_file())
        except OSError as exc:
            fail(f"{p}: cannot list the folder ({exc.strerror or exc})")
        if not found:
            fail(f"{p}: no images in this folder (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}; "
                 "subfolders are not read)")
        out += found
    return out


COMMANDS = {"export": export_command, "predict": predict_command}
