"""From run to use: the exported model agrees with PyTorch under onnxruntime, and predictions are calibrated."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.augment import to_float
from engine.data import load_dataset
from engine.export import ExportError, deploy_model, export_run, predict_images
from engine.spec import load_spec
from engine.store import Run

from .conftest import ROOT

pytestmark = pytest.mark.slow  # every test here uses a run trained by the real worker, then exports or predicts

SMALL = ["data.synthetic_train=192", "data.synthetic_test=96", "data.val_size=64", "train.batch_size=64",
         "train.epochs=2", "train.threads=1", "evaluate.calibrate=true", "evaluate.tta=true"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Run:
    run = Run.create(tmp_path_factory.mktemp("export") / "runs", load_spec(None, SMALL))
    proc = subprocess.run([sys.executable, "-m", "engine.worker", str(run.path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def dataset_of(run: Run):
    """The run's data set, loaded here to check against: export and predict never load it."""
    spec = run.spec()
    return load_dataset(spec.data, spec.data.seed)


@pytest.fixture(scope="module")
def exported(trained):
    return export_run(trained, "best")


def test_onnx_agrees_with_pytorch_on_the_test_images(trained, exported):
    ort = pytest.importorskip("onnxruntime")
    model, data = deploy_model(trained, "best").model, dataset_of(trained)
    images = to_float(data.test_x)
    with torch.no_grad():
        expected = model(images).numpy()
    session = ort.InferenceSession(str(exported.folder / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": images.numpy()})[0]
    assert got.shape == expected.shape == (96, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_the_exported_model_has_normalization_and_temperature_built_in(trained, exported):
    from safetensors.torch import load_file

    cal = [r for r in trained.results("calibrate") if r.checkpoint == "best.pt"][-1].data
    tensors = load_file(str(exported.folder / "model.safetensors"))
    assert float(tensors["temperature"]) == pytest.approx(cal.temperature)
    card = json.loads((exported.folder / "model_card.json").read_text())
    assert card == exported.card
    assert card["checkpoint"] == "best.pt" and card["calibrated"] and card["temperature"] == pytest.approx(cal.temperature)
    assert card["ece"] == {"before": cal.before.ece, "after": cal.after.ece}
    tta = [r for r in trained.results("tta") if r.checkpoint == "best.pt"][-1].data
    assert card["accuracy"]["test_with_tta"] == tta.tta_acc
    # the card's plain accuracy is the checkpoint's own as the run measured it: the TTA pass measured it too
    assert card["accuracy"]["test"] == pytest.approx(tta.base_acc)
    assert card["accuracy"]["test"] == dict(trained.series("test_acc"))[card["step"]]
    assert card["calibrated_on"] == {"checkpoint": "best.pt", "step": card["step"]} and card["chosen_by"] == "val_acc"
    assert card["calibration_method"] == cal.method == "log_t"  # how T was fitted, named
    # the TTA figure's seed (one draw: no std); the fixture's TTA is the spec's deterministic views
    assert card["accuracy"]["test_with_tta_std"] == tta.tta_acc_std
    assert card["accuracy"]["tta_seeds"] == ([tta.seed] if tta.random_views else [])
    assert card["input"]["shape"] == ["batch", 3, 32, 32] and len(card["classes"]) == 10


def test_predict_gives_calibrated_top_k_for_image_files(trained, tmp_path):
    from PIL import Image

    model, data = deploy_model(trained, "best").model, dataset_of(trained)
    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(data.test_x[i].permute(1, 2, 0).numpy()).save(p)
        paths.append(p)
    out = predict_images(trained, paths, top_k=3)
    with torch.no_grad():
        probs = torch.softmax(model(to_float(data.test_x[:3])).double(), 1)
    for row, p in zip(out, probs):
        assert [c for c, _ in row["top"]] == [data.classes[i] for i in p.topk(3).indices.tolist()]
        assert [v for _, v in row["top"]] == pytest.approx(p.topk(3).values.tolist(), abs=1e-6)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ExportError, match="bad.png: not an image"):
        predict_images(trained, [tmp_path / "bad.png"])
    with pytest.raises(ExportError, match="missing.png: no such file"):
        predict_images(trained, [tmp_path / "missing.png"])


def test_the_cli_exports_and_predicts(trained, exported, tmp_path):
    from PIL import Image

    from .conftest import cockpit

    res = cockpit("export", str(trained.path), "--checkpoint", "last", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "exported" in res.stdout and "│ onnx " in res.stdout  # the files, by kind (long paths are folded)
    assert json.loads((trained.path / "export" / "model_card.json").read_text())["checkpoint"] == "last.pt"
    Image.new("RGB", (48, 40), (200, 30, 30)).save(tmp_path / "red.jpg")
    res = cockpit("predict", str(trained.path), "red.jpg", "-k", "2", timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "red.jpg" in res.stdout and res.stdout.count("%") == 2
    res = cockpit("predict", str(trained.path), "none.jpg", cwd=tmp_path)
    assert res.returncode == 2 and "none.jpg: no such file" in res.stderr


def test_predict_takes_a_folder_as_its_images_sorted_by_name(trained, tmp_path):
    """`cockpit predict RUN DIR`: the folder's images in name order, each predicted as when named
    one by one; other files and subfolders are left out; a folder without images exits 2."""
    from PIL import Image

    from .conftest import cockpit

    folder = tmp_path / "shots"
    (folder / "sub").mkdir(parents=True)
    for name, colour in (("b.png", (20, 200, 30)), ("a.jpg", (200, 30, 30)), ("sub/c.png", (0, 0, 200))):
        Image.new("RGB", (40, 36), colour).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    res = cockpit("predict", str(trained.path), "shots", "-k", "1", timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    named = [p.name for p in (folder / "a.jpg", folder / "b.png")]
    assert res.stdout.index("a.jpg") < res.stdout.index("b.png") and "c.png" not in res.stdout
    assert "notes.txt" not in res.stdout and res.stdout.count("%") == 2
    one_by_one = cockpit("predict", str(trained.path), *(f"shots/{n}" for n in named), "-k", "1", timeout=300,
                         cwd=tmp_path)
    rows = lambda out: [line.split("│")[3:5] for line in out.splitlines() if "%" in line]  # noqa: E731
    assert len(rows(res.stdout)) == 2 and rows(res.stdout) == rows(one_by_one.stdout), "the same class and probability"
    (tmp_path / "empty").mkdir()
    res = cockpit("predict", str(trained.path), "empty", cwd=tmp_path)
    assert res.returncode == 2 and "empty: no images in this folder" in res.stderr and "Traceback" not in res.stderr
