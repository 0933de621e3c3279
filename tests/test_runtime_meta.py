"""A run says what actually ran: the device, the precision with `auto` resolved, the compile mode, the
memory format and the torch/CUDA/cuDNN versions, in meta `runtime`, the dashboard's header line,
`cockpit runs --json` and the report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from engine.contracts import RuntimeInfo
from engine.spec import load_spec
from engine.store import Run

from .conftest import ROOT, cockpit

TINY = ["data.synthetic_train=64", "data.synthetic_test=32", "train.batch_size=32", "train.epochs=1",
        'train.device="cpu"', "train.threads=1"]


def _train(runs_dir, sets: list[str]) -> Run:
    run = Run.create(runs_dir, load_spec(None, TINY + sets))
    proc = subprocess.run([sys.executable, "-m", "engine.worker", str(run.path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def _every_surface_says(run: Run, line: str) -> dict:
    """meta, runs --json and the report (json, md, html, terminal) all carry what ran; returns the meta."""
    runtime = RuntimeInfo.model_validate(run.meta()["runtime"]).model_dump()
    assert runtime["torch"] == torch.__version__
    assert runtime["cuda"] == (torch.version.cuda if runtime["device"].startswith("cuda") else None)
    rows = {r["run_id"]: r for r in map(json.loads, cockpit("runs", "--json").stdout.splitlines())}
    assert rows[run.run_id]["runtime"] == runtime
    res = cockpit("report", run.run_id, "--format", "all")
    assert res.returncode == 0, res.stderr
    assert json.loads((run.path / "report.json").read_text())["run"]["runtime"] == runtime
    assert line in (run.path / "report.md").read_text().replace("\\_", "_")  # Markdown escapes the underscore
    assert line in (run.path / "report.html").read_text()
    from rich.console import Console

    from cockpit.report import summarize
    from cockpit.report.render.term import header

    console = Console(width=250, record=True, file=open("/dev/null", "w"))
    console.print(header(summarize(run)))  # the terminal report's (and `cockpit report --format term`'s) header
    assert line in console.export_text()
    return runtime


def test_auto_precision_is_recorded_resolved_and_shown_everywhere(runs_dir):
    run = _train(runs_dir, ['train.amp="auto"', "train.channels_last=true"])  # on the CPU: fp32, contiguous
    runtime = _every_surface_says(run, "cpu · fp32 · eager · contiguous")
    assert (runtime["device"], runtime["precision"], runtime["compile"], runtime["memory_format"]) == (
        "cpu", "fp32", "off", "contiguous")
    assert runtime["cudnn"] is None  # not in use on the CPU


async def test_the_dashboard_header_says_what_ran(runs_dir):
    from cockpit.tui.app import CockpitApp
    from cockpit.tui.widgets.run_bar import RunBar

    from .test_tui import dashboard_loaded

    run = Run.create(runs_dir, load_spec(None, TINY))
    run.set_meta(state="finished", device="CPU (2 cores, 1 threads)", total_steps=2, steps_per_epoch=2, epochs=1,
                 runtime=RuntimeInfo(device="cpu", precision="bf16 autocast", compile="torch.compile (mode default)",
                                     memory_format="channels_last", torch="2.5.1", cuda=None, cudnn=None).model_dump())
    run.add_metrics([(2, 1.0, "train_loss", 1.0)])
    async with CockpitApp(runs_dir=runs_dir, run=run.run_id).run_test(size=(200, 30)) as pilot:
        dash = await dashboard_loaded(pilot)
        head = str(dash.query_one(RunBar).render()).splitlines()[0]
        assert "bf16 autocast · torch.compile (mode default) · channels_last" in head, head


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile's inductor backend builds C++ kernels on the CPU: no C compiler here")
def test_bf16_compile_and_channels_last_are_recorded(runs_dir):
    run = _train(runs_dir, ['train.amp="bf16"', "train.compile=true", "train.channels_last=true",
                            "train.channels_last_cpu=true", "monitor.activations_every=0"])
    runtime = _every_surface_says(run, "cpu · bf16 autocast · torch.compile (mode default) · channels_last")
    assert runtime["precision"] == "bf16 autocast" and runtime["memory_format"] == "channels_last"
