"""Helpers for the sweep tests: tiny sweep files on the synthetic set (seconds per trial)."""

from __future__ import annotations

from pathlib import Path

TINY_SET = ('set = { "data.synthetic_train" = 256, "data.synthetic_test" = 128, "train.batch_size" = 64, '
            '"train.epochs" = EPOCHS, "monitor.every" = 1, "train.threads" = 1, "data.val_size" = VAL }')


def write_sweep(folder: Path, name: str, variants: dict[str, float], seeds: list[int], epochs: int = 1,
                extra: str = "", target: float = 0.3, val: int = 0) -> Path:
    """A variants sweep over optim.lr (one variant per name: lr) on the tiny synthetic set; `val`
    training images held out for validation (what Optuna sees: a search or pruning needs some)."""
    lines = [f'name = "{name}"', 'base = "quickstart"', f"seeds = {seeds}", f"target = {target}",
             TINY_SET.replace("EPOCHS", str(epochs)).replace("VAL", str(val)), extra, ""]
    for vname, lr in variants.items():
        lines += ["[[variant]]", f'name = "{vname}"', f'set = {{ "optim.lr" = {lr} }}', ""]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
