"""The benchmark scripts never rot: each runs end to end with tiny sizes (they are scripts, not tests)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from .conftest import ROOT

pytestmark = pytest.mark.slow


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def run_main(name: str, capsys, *args: str) -> str:
    """A benchmark's main(argv) in this process (saves a torch import); torch's thread count is restored."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        assert module.main(list(args)) == 0
    finally:
        torch.set_num_threads(threads)
    return capsys.readouterr().out


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_gpu_benchmark_cpu_smoke_prints_every_figure_row(tmp_path):
    out = tmp_path / "gpu.json"
    text = ok(bench("bench/gpu.py", "--cpu-smoke", "--out", str(out), timeout=150))
    rows = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) == 3 and not line.startswith("|"):
            rows[parts[0]] = (parts[1], parts[2])
    assert rows.pop("figure") == ("value", "device")
    assert {device for _, device in rows.values()} == {rows["GPU"][1]}
    assert rows["check fp32 step on CPU: trains"][0].startswith("pass")
    assert rows["check fp32 step on CPU: sampled instruments run"][0].startswith("pass (sampled: act, difficulty")
    for mode in ("bf16 + channels_last", "fp16 + GradScaler + channels_last", "bf16 + channels_last + torch.compile"):
        assert rows[f"check {mode}"][0] == "skipped (no CUDA)"
    # the compile check on CPU: the compile lands in the warm-up, and the timed steps never recompile
    assert "no recompile in the timed steps" in rows["check torch.compile step on CPU: trains"][0]
    for figure in ("throughput engine", "throughput torchvision DataLoader alone", "throughput torchvision: same",
                   "throughput engine / torchvision", "fast94 spec", "airbench94 reference", "fast94 seed 0",
                   "fast94 seed 1", "fast94 final TTA accuracy (2 seeds)", "fast94 train + TTA time (2 seeds, compile apart)",
                   "total wall time"):
        assert any(name.startswith(figure) for name in rows), f"no row {figure!r}"
    assert not any(v.startswith("FAIL") for v, _ in rows.values())
    assert " +- " in rows["fast94 final TTA accuracy (2 seeds)"][0]
    seed = rows["fast94 seed 0"][0]  # a real run: the TTA pass on best.pt, compile and build apart
    assert "TTA" in seed and "incl. compile" in seed and "finished" in seed
    airbench = rows["airbench94 reference"][0]  # CUDA-only; its loader reads back the exported images
    assert airbench.startswith("skipped (airbench not installed") or "512 train / 256 test images read back" in airbench
    assert "images/s" in next(v for k, (v, _) in rows.items() if k.startswith("throughput engine:"))
    saved = json.loads(out.read_text())
    assert saved["cpu_smoke"] is True
    assert [r["figure"] for r in saved["rows"]] == [k for k in rows]


def test_instruments_benchmark_runs_with_tiny_sizes(capsys):
    text = run_main("instruments", capsys, "--device", "cpu", "--batch", "16", "--steps", "4", "--warmup", "1",
                    "--repeats", "2", "--storage-steps", "10", "--storage-epochs", "2", "--set", "data.image_size=16")
    assert "headline: default instruments / none =" in text
    assert "system sampler:" in text and "training time with / without the sampler = 1.0" in text
    for name in ("none", "default", "all@1", "grad_flow@1", "activations@1", "difficulty@1", "read@1"):
        assert f"\n{name} " in text
    assert "sum of the amortized rows" in text
    assert "projected run.db for sgd_cosine" in text and "MiB" in text


def test_engine_overhead_benchmark_runs_with_tiny_sizes(capsys):
    text = run_main("engine_overhead", capsys, "--device", "cpu", "--batch", "16", "--steps", "3", "--repeats", "2",
                    "--set", "data.image_size=16")
    assert "engine (Trainer.train_step loop)" in text and "bare PyTorch loop" in text
    assert "ratio engine / bare" in text
