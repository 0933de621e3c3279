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


def smoke_rows(text: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) == 3 and not line.startswith("|"):
            rows[parts[0]] = (parts[1], parts[2])
    return rows


def test_gpu_benchmark_cpu_smoke_runs_the_lease_parts_in_order_and_saves_as_it_goes(tmp_path):
    """The same script and parts as the GPU lease (fast94 first, in rotation after a warm-up; the
    checks; throughput; the whole-run pair), scaled down."""
    out = tmp_path / "gpu.json"
    text = ok(bench("bench/gpu.py", "--cpu-smoke", "--out", str(out), timeout=600))
    rows = smoke_rows(text)
    assert rows.pop("figure") == ("value", "device")
    assert {device for _, device in rows.values()} == {rows["GPU"][1]}
    names = list(rows)
    assert names.index("fresh process") < names.index("fast94 warm-up") < names.index("fast94 seed 0")
    assert names.index("fast94 seed 1") < names.index("check fp32 step on CPU: trains")  # timed before the checks
    assert rows["fresh process"][0].startswith("pass: 0 graph(s)")
    # rotation: seed 0 fast94 first, seed 1 the lean side first
    assert names.index("fast94 seed 0") < names.index("fast94 lean seed 0")
    assert names.index("fast94 lean seed 1") < names.index("fast94 seed 1")
    for side in ("fast94", "fast94 lean"):
        seed = rows[f"{side} seed 0"][0]
        for part in ("steps", "evaluations", "window reads + store writes", "checkpoints (training thread)",
                     "checkpoint writer wait", "TTA", "start-up", "graphs 0 -> 0", "finished"):
            assert part in seed, (side, part, seed)
        assert "time median" in rows[f"{side} (2 seeds)"][0] and " +- " in rows[f"{side} (2 seeds)"][0]
        assert rows[f"{side} where the time goes (medians, s)"][0].startswith("steps ")
    assert rows["check fp32 step on CPU: trains"][0].startswith("pass")
    assert rows["check fp32 step on CPU: sampled instruments run"][0].startswith("pass (sampled: act, difficulty")
    for mode in ("bf16 + channels_last", "fp16 + GradScaler + channels_last", "bf16 + channels_last + torch.compile"):
        assert rows[f"check {mode}"][0] == "skipped (no CUDA)"
    assert "no recompile in the timed steps" in rows["check torch.compile step on CPU: trains"][0]
    airbench = rows["airbench94 reference"][0]  # CUDA-only; its loader reads back the exported images
    assert airbench.startswith("skipped (airbench not installed") or "512 train / 256 test images read back" in airbench
    assert "images/s" in next(v for k, (v, _) in rows.items() if k.startswith("throughput engine:"))
    assert float(rows["whole-run engine/bare"][0].split()[0]) > 0
    assert not any(v.startswith("FAIL") for v, _ in rows.values())
    saved = json.loads(out.read_text())
    assert saved["cpu_smoke"] is True and saved["complete"] is True
    assert [r["figure"] for r in saved["rows"]] == names
    assert any(line.startswith("fast94 (2 seeds): ") for line in saved["summary"])
    seeds = [r["data"] for r in saved["rows"] if "data" in r]  # the figures behind each seed's row
    assert [(d["side"], d["seed"]) for d in seeds] == [("fast94", 0), ("fast94 lean", 0), ("fast94 lean", 1), ("fast94", 1)]
    assert all(d["dynamo"]["before"]["graphs"] == d["dynamo"]["after"]["graphs"] and "steps" in d["parts"] for d in seeds)
    assert text.rstrip().splitlines()[-1].startswith(saved["summary"][-1][:40])  # the summary is printed last


def test_the_recompile_counter_sees_a_graph_compiled_after_the_warm_up():
    """What fails the bench loudly: dynamo compiling a new graph after the warm-up (here a new input rank)."""
    from bench.gpu_sides import dynamo_counts

    f = torch.compile(lambda x: x * 2 + 1, backend="eager")
    f(torch.ones(3))
    warm = dynamo_counts()
    f(torch.ones(3))
    assert dynamo_counts()["graphs"] == warm["graphs"]  # the same shapes: no new graph
    f(torch.ones(2, 2))
    assert dynamo_counts()["graphs"] > warm["graphs"]


def test_welch_interval_matches_a_hand_computed_one():
    from bench.gpu_fast94 import welch

    a, b = [0.940, 0.942, 0.938, 0.941], [0.939, 0.937, 0.940, 0.938]
    d, half = welch(a, b)
    # means 0.94025 and 0.9385; variances 2.9167e-6 and 1.6667e-6; se 1.0704e-3; df 5.59 -> t(5) 2.571
    assert d == pytest.approx(0.00175) and half == pytest.approx(2.571 * 1.0704e-3, rel=1e-3)


def test_the_carried_wheels_install_offline_in_a_fresh_venv(tmp_path):
    """bench/carry.sh fetch (here, with PyPI) then its install with --no-index in a fresh venv, as on the
    GPU machine; airbench, pydantic and tomli_w then import from the target alone."""
    env = dict(os.environ, CARRY_DIR=str(tmp_path / "whl"), PYTHON=sys.executable)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    fetch = subprocess.run(["bash", "bench/carry.sh", "fetch", version], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
    if fetch.returncode and any(s in fetch.stderr for s in ("NewConnectionError", "Temporary failure in name resolution",
                                                             "Network is unreachable", "ConnectTimeout")):
        pytest.skip(f"no PyPI here: {fetch.stderr.strip().splitlines()[-1]}")
    assert fetch.returncode == 0, fetch.stderr
    assert any(p.name.startswith("airbench-0.1.8-py3-none-any") for p in (tmp_path / "whl").iterdir())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = tmp_path / "site"
    install = subprocess.run(["bash", "bench/carry.sh", "install", str(site)], cwd=ROOT, capture_output=True, text=True,
                             env=dict(env, PYTHON=str(venv / "bin" / "python"), PIP_INDEX_URL="http://127.0.0.1:9/"),
                             timeout=300)
    assert install.returncode == 0, install.stderr
    probe = ("import airbench, pydantic, tomli_w; from airbench import CifarLoader, evaluate, train94, warmup94; "
             "print(airbench.__file__, pydantic.__file__, tomli_w.__file__)")
    res = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = [{str(site)!r}] + {sys.path!r}; {probe}"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert all(p.startswith(str(site)) for p in res.stdout.split())


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


def test_a_fresh_trainer_per_seed_reuses_the_compiled_graph(monkeypatch):
    """What the GPU bench's recompile check relies on: each seed builds a new Trainer (a new model), and
    dynamo's cached graph still serves it (no recompile, so no drift towards the recompile limit)."""
    from bench.gpu_sides import dynamo_counts
    from cockpit.core.presets import find_preset
    from engine.spec import load_spec
    from engine.train import Trainer

    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, **k: real(m, backend="eager"))  # dynamo's guards, no inductor
    sets = ["data.source=synthetic", "data.synthetic_train=96", "data.synthetic_test=32", "train.batch_size=32",
            "model.width=0.125", "train.threads=1", "train.device=cpu", "train.epochs=1", "train.compile=true"]
    graphs = []
    for seed in range(3):
        tr = Trainer(load_spec(find_preset("fast94"), sets + [f"train.seed={seed}"]), None, log=lambda _m: None)
        for xb, yb, _ in tr.train_loader.epoch_batches(0):
            tr.train_step(xb, yb)
        graphs.append(dynamo_counts()["graphs"])
    assert graphs[0] >= 1 and graphs[1] == graphs[2] == graphs[0], graphs


def test_tui_bytes_benchmark_counts_what_a_live_dashboard_sends():
    text = ok(bench("bench/tui_bytes.py", "--seconds", "2", "--rounds", "1", "--rates", "0.4,5", timeout=300))
    rows = {tuple(line.split()[:3]): float(line.split()[3]) for line in text.splitlines()
            if line.split()[1:2] in (["charts"], ["compact"])}
    assert set(rows) == {("120x36", "charts", "0.4s"), ("120x36", "charts", "5s"), ("119x36", "compact", "0.4s")}
    assert rows[("120x36", "charts", "0.4s")] > 0, "a live dashboard draws"
