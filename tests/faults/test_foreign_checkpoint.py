"""A checkpoint from outside the run: `--checkpoint` names one of the run's own
checkpoints; a path anywhere else is refused with one line, never read, never recorded."""

from __future__ import annotations

import pytest
import torch

from engine import checkpoint as ckpt
from engine.passes.common import load_weights
from engine.spec import RunSpec, load_spec
from engine.store import Run

from ..conftest import cockpit


@pytest.mark.parametrize("name", ["/etc/passwd", "../other/checkpoints/best", "sub/best.pt", "..", "", "a\\b"])
def test_only_a_plain_name_in_checkpoints_is_a_checkpoint(tmp_path, name):
    with pytest.raises(ckpt.CheckpointError, match="not a checkpoint of this run"):
        ckpt.path_for(tmp_path / "checkpoints", name)
    assert ckpt.path_for(tmp_path / "checkpoints", "best") == tmp_path / "checkpoints" / "best.pt"


def test_a_foreign_checkpoint_is_never_loaded(tmp_path):
    run = Run.create(tmp_path / "runs", RunSpec())
    foreign = tmp_path / "elsewhere" / "best.pt"
    foreign.parent.mkdir()
    ckpt.save_atomic({"model": {"w": torch.ones(1)}, "step": 9}, foreign)
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ckpt.CheckpointError, match="not a checkpoint of this run"):
        load_weights(model, run, str(foreign))


@pytest.mark.slow  # trains a run first, then three CLI processes
@pytest.mark.parametrize("command", ["tta", "calibrate", "export"])
def test_the_cli_refuses_a_checkpoint_path_outside_the_run_with_exit_2(runs_dir, tmp_path, command):
    run = Run.create(runs_dir, load_spec(None, ["name=own", "data.val_size=64"]))  # calibrate needs a val split
    run.set_meta(state="finished")
    foreign = tmp_path / "elsewhere.pt"
    ckpt.save_atomic({"model": {}, "step": 1}, foreign)
    res = cockpit(command, run.run_id, "--checkpoint", str(foreign))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "not a checkpoint of this run" in res.stderr and "Traceback" not in res.stderr
    assert run.results() == [], "nothing recorded on the run"
