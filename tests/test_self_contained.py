"""A trained run is self-contained: predict and export use the classes, normalization and image size
stored with the run when it trained (never the data folder as it is now), and a temperature only on
the very weights it was fitted on (never on a later best.pt)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import checkpoint as ckpt
from engine.contracts import NOT_CALIBRATED
from engine.spec import load_spec
from engine.store import Run

from .conftest import ROOT, cockpit

CLASSES = ("cat", "dog", "frog")


def _write_tree(root: Path) -> None:
    """A learnable folder dataset: each class its own colour, every image noised on its own."""
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = {"cat": (200, 60, 40), "dog": (40, 180, 60), "frog": (50, 70, 210)}
    for split, n in (("train", 24), ("test", 8)):
        for cls in CLASSES:
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                img = np.clip(np.array(colours[cls]) + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(root / split / cls / f"{i}.png")


def _train(runs_dir: Path, sets: list[str]) -> Run:
    run = Run.create(runs_dir, load_spec(None, sets))
    proc = subprocess.run([sys.executable, "-m", "engine.worker", str(run.path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def _predict(run: Run, images: list[Path]) -> str:
    res = cockpit("predict", str(run.path), *map(str, images), "-k", "3", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.mark.slow
def test_predict_and_export_survive_a_renamed_then_deleted_data_folder(tmp_path):
    from engine.export import export_run, predict_images

    data = tmp_path / "data"
    _write_tree(data)
    run = _train(tmp_path / "runs", ["data.source=folder", f"data.root={data}", "data.val_size=12",
                                     "train.batch_size=24", "train.epochs=1", "train.threads=1"])
    meta = run.meta()["inference"]
    assert meta["classes"] == list(CLASSES) and (meta["channels"], meta["height"], meta["width"]) == (3, 32, 32)
    images = [tmp_path / f"q{i}.png" for i in range(3)]
    for i, p in enumerate(images):
        shutil.copy(data / "test" / CLASSES[i] / "0.png", p)
    before_cli, before = _predict(run, images), predict_images(run, images)
    assert {c for row in before for c, _ in row["top"]} == set(CLASSES)

    (data / "train" / "cat").rename(data / "train" / "zebra")  # zebra now sorts last: every label would shift
    (data / "test" / "cat").rename(data / "test" / "zebra")
    assert _predict(run, images) == before_cli and predict_images(run, images) == before
    run.set_meta(resume=True, state="stopped")  # resuming on the changed data would train other classes
    proc = subprocess.run([sys.executable, "-m", "engine.worker", str(run.path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1 and run.meta()["state"] == "failed"
    assert "has changed since this run started (3 classes ['cat', 'dog', 'frog']" in run.meta()["error"]
    assert _predict(run, images) == before_cli  # and the run still predicts as it was trained
    shutil.rmtree(data)
    assert _predict(run, images) == before_cli and predict_images(run, images) == before
    card = export_run(run).card
    assert card["classes"] == list(CLASSES) and card["normalization"]["mean"] == meta["mean"]
    assert card["accuracy"]["test_images"] == 24 and card["accuracy"]["test"] == dict(run.series("test_acc"))[card["step"]]


def test_a_run_that_stored_nothing_for_inference_is_refused_with_one_line(tmp_path):
    run = Run.create(tmp_path / "runs", load_spec(None, ["train.epochs=1"]))
    res = cockpit("predict", str(run.path), "x.png")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "stored no classes and normalization" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_a_temperature_applies_only_to_the_weights_it_was_fitted_on(tmp_path):
    from engine.export import deploy_model, export_run, predict_images
    from PIL import Image

    run = _train(tmp_path / "runs", ["data.synthetic_train=192", "data.synthetic_test=96", "data.val_size=64",
                                     "train.batch_size=64", "train.epochs=2", "train.threads=1",
                                     "evaluate.calibrate=true"])
    fitted = run.results("calibrate")[-1].data  # fitted on best.pt at the end of training
    first = deploy_model(run)
    assert first.calibration == fitted and float(first.model.temperature) == pytest.approx(fitted.temperature)
    assert fitted.weights_sha256 == first.digest and fitted.step == first.step

    # a later best.pt (as after `cockpit resume` improved on it): other weights, step 42
    path = ckpt.path_for(run.checkpoints, "best")
    state = ckpt.load(path)
    state["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["model"].items()}
    state["step"] = 42
    ckpt.save_atomic(state, path)

    later = deploy_model(run)
    assert (later.step, later.calibration, float(later.model.temperature)) == (42, None, 1.0)
    card = export_run(run).card
    assert (card["step"], card["calibrated"], card["temperature"], card["calibration"]) == (42, False, 1.0, NOT_CALIBRATED)
    assert card["calibrated_on"] is None and card["ece"] is None
    Image.new("RGB", (32, 32), (120, 30, 200)).save(tmp_path / "q.png")
    row = predict_images(run, [tmp_path / "q.png"])[0]
    with torch.no_grad():  # the plain softmax of the new weights: no temperature from step 24's weights
        plain = torch.softmax(later.model.net((torch.zeros(1, 3, 32, 32) + torch.tensor([120, 30, 200]).view(1, 3, 1, 1)
                                                / 255 - later.model.mean) / later.model.std).double(), 1)
    assert row["top"][0][1] == pytest.approx(plain.max().item(), abs=1e-6)
    res = cockpit("predict", str(run.path), "q.png", cwd=tmp_path, timeout=300)
    assert NOT_CALIBRATED in " ".join(res.stdout.split())
    res = cockpit("export", str(run.path), timeout=300)
    assert res.returncode == 0 and NOT_CALIBRATED in " ".join(res.stdout.split()), res.stdout + res.stderr

    res = cockpit("calibrate", str(run.path), timeout=300)  # fitted again, on the new weights
    assert res.returncode == 0, res.stdout + res.stderr
    card = json.loads(json.dumps(export_run(run).card))
    refit = run.results("calibrate")[-1].data
    assert card["calibrated"] and card["temperature"] == pytest.approx(refit.temperature)
    assert card["calibrated_on"] == {"checkpoint": "best.pt", "step": 42} and refit.temperature != fitted.temperature
