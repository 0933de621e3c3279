"""From run to use: a run's model as safetensors and ONNX, with a model card, and predictions.

The exported model is self-contained: it takes float32 images in [0, 1] (N, 3, H, W), normalizes
them with the run's own mean and std, and returns logits divided by the temperature fitted by
`cockpit calibrate` on exactly those weights (1.0 when they were never calibrated: a temperature fitted on
an earlier best.pt is never applied to a later one), so a softmax of its output is the calibrated
probability. The classes, normalization and image size come from the run's meta (`inference`, stored when
it trained): export and predict never open the dataset. Files go to `runs/<id>/export/`, each written
atomically:

    model.safetensors   the weights, the normalization and the temperature
    model.onnx          the same model for any ONNX runtime (batch size free)
    model_card.json     classes, input, accuracy with and without TTA, ECE, temperature, spec hash
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .checkpoint import path_for, weights_digest
from .contracts import NOT_CALIBRATED, CalibrationResult, InferenceInfo, TTAResult, UsageError, meta_model
from .image_file import ImageFileError, open_rgb
from .atomic_write import write_atomic, write_text_atomic
from .models import build_model
from .passes import load_weights
from .store import Run

__all__ = ["DeployModel", "Deployed", "ExportError", "Exported", "deploy_model", "export_run", "inference_info",
           "predict_images", "EXPORT_DIR"]

EXPORT_DIR = "export"


class ExportError(UsageError):
    """An export or a prediction that cannot be made (a missing package, an unreadable image...)."""


class DeployModel(nn.Module):
    """Normalization, the network and the temperature in one module: images in [0, 1] -> logits / T."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...], temperature: float = 1.0,
                 normalize: bool = True):
        super().__init__()
        self.net = net
        c = len(mean)
        self.register_buffer("mean", torch.tensor(mean if normalize else (0.0,) * c).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(std if normalize else (1.0,) * c).view(1, c, 1, 1))
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images - self.mean) / self.std) / self.temperature


@dataclass(frozen=True)
class Exported:
    folder: Path
    card: dict[str, Any]


@dataclass(frozen=True)
class Deployed:
    """A run's model ready to use, and what it is: the checkpoint file, its step and weights' digest, what
    inference needs (from the run's meta, never the dataset), and the calibration fitted on these weights."""
    model: DeployModel
    checkpoint: str
    step: int
    digest: str
    info: InferenceInfo
    calibration: CalibrationResult | None

    @property
    def calibration_note(self) -> str:
        c = self.calibration
        return f"fitted on these weights ({c.checkpoint}, step {c.step})" if c else NOT_CALIBRATED


def inference_info(run: Run) -> InferenceInfo:
    """What the run stored for inference when it trained; ExportError for a run that has none."""
    info = meta_model(run.meta(), "inference", InferenceInfo)
    if info is None:
        raise ExportError(f"run {run.run_id} stored no classes and normalization for inference (it never trained, or "
                          "a cockpit before they were stored trained it): predict and export never read them from "
                          "the data folder, which may have changed since; train it again to use it")
    return info


def _measured_on(run: Run, kind: str, digest: str) -> Any:
    """The latest result of a kind measured on exactly these weights (a later best.pt has other ones)."""
    rows = [r.data for r in run.results(kind) if getattr(r.data, "weights_sha256", "") == digest]
    return rows[-1] if rows else None


def deploy_model(run: Run, checkpoint: str = "best") -> Deployed:
    """The run's model in eval mode on the CPU: normalization from the run's meta, the temperature only
    where a calibration was fitted on these very weights (else 1)."""
    path_for(run.checkpoints, checkpoint)  # the name the user typed is checked before anything else is read
    spec, info = run.spec(), inference_info(run)
    net = build_model(spec.model, len(info.classes), info.width)
    used, state = load_weights(net, run, checkpoint, "cpu")
    digest = weights_digest(net.state_dict())
    cal = _measured_on(run, "calibrate", digest)
    model = DeployModel(net, tuple(info.mean), tuple(info.std), cal.temperature if cal else 1.0).eval()
    return Deployed(model, used, int(state.get("step", 0)), digest, info, cal)


def _test_acc(run: Run, d: Deployed) -> float | None:
    """The checkpoint's test accuracy as the run measured it at that step (swa.pt: the SWA model's); None
    where no evaluation was made at its step (a last.pt written mid-epoch by a stop)."""
    name = "swa_test_acc" if d.checkpoint.startswith("swa") else "test_acc"
    return dict(run.series(name)).get(d.step)


def _card(run: Run, d: Deployed, files: dict[str, str]) -> dict[str, Any]:
    spec, meta = run.spec(), run.meta()
    cal, tta, info = d.calibration, _measured_on(run, "tta", d.digest), d.info
    best = d.checkpoint.startswith("best")
    return {
        "run": run.run_id, "checkpoint": d.checkpoint, "step": d.step, "weights_sha256": d.digest,
        "model": spec.model.name,
        # as the trainer chose it: on validation accuracy where the run measured one, else the last evaluation
        "chosen_by": (("val_acc" if run.series("val_acc") else "last evaluation") if best else None),
        "classes": list(info.classes),
        "input": {"name": "images", "shape": ["batch", info.channels, info.height, info.width], "dtype": "float32",
                  "range": [0.0, 1.0], "layout": f"NCHW, {info.channel_order}"},
        "output": {"name": "logits", "meaning": "logits / temperature: softmax gives calibrated probabilities"},
        "normalization": {"mean": list(info.mean), "std": list(info.std), "built_in": True},
        "temperature": float(d.model.temperature), "calibrated": cal is not None, "calibration": d.calibration_note,
        "calibrated_on": {"checkpoint": cal.checkpoint, "step": cal.step} if cal else None,
        "calibration_method": cal.method if cal else None,
        "accuracy": {"test": _test_acc(run, d), "test_with_tta": tta.tta_acc if isinstance(tta, TTAResult) else None,
                     # over several draws of TTA's random views, test_with_tta is their mean and this their sample std
                     "test_with_tta_std": tta.tta_acc_std if isinstance(tta, TTAResult) else None,
                     "tta_seeds": (tta.draw_seeds or [tta.seed]) if isinstance(tta, TTAResult) and tta.random_views else [],
                     "test_images": info.test_images},
        "ece": {"before": cal.before.ece, "after": cal.after.ece} if cal else None,
        "trained_with": meta.get("runtime"),
        "spec_sha256": hashlib.sha256((run.path / "spec.toml").read_bytes()).hexdigest(),
        "files": files, "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch_version": torch.__version__,
    }


def _save_safetensors(model: DeployModel, path: Path, card: dict[str, Any]) -> None:
    try:
        from safetensors.torch import save
    except ImportError:
        raise ExportError("exporting needs safetensors: pip install 'training-cockpit[export]'") from None
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {"run": card["run"], "checkpoint": card["checkpoint"], "classes": json.dumps(card["classes"])}
    blob = save(tensors, metadata=meta)
    write_atomic(path, lambda f: f.write(blob))


def _save_onnx(model: DeployModel, path: Path, shape: tuple[int, int, int]) -> None:
    try:
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise ExportError("exporting to ONNX needs onnx and onnxscript: pip install 'training-cockpit[export]'") from None
    example = torch.rand(2, *shape)
    program = torch.onnx.export(model, (example,), None, input_names=["images"], output_names=["logits"],
                                dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False)
    write_atomic(path, lambda f: f.write(program.model_proto.SerializeToString()))


def export_run(run: Run, checkpoint: str = "best", log: Callable[[str], None] = lambda _m: None) -> Exported:
    """Write runs/<id>/export/: safetensors, ONNX and the model card; returns the folder and the card.
    Everything comes from the run dir: the dataset is never opened."""
    d = deploy_model(run, checkpoint)
    folder = run.path / EXPORT_DIR
    folder.mkdir(exist_ok=True)
    files = {"safetensors": "model.safetensors", "onnx": "model.onnx", "card": "model_card.json"}
    card = _card(run, d, files)
    log("writing model.safetensors")
    _save_safetensors(d.model, folder / files["safetensors"], card)
    log("exporting model.onnx")
    _save_onnx(d.model, folder / files["onnx"], (d.info.channels, d.info.height, d.info.width))
    write_text_atomic(folder / files["card"], json.dumps(card, indent=2) + "\n")
    return Exported(folder, card)


def load_image(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """An image file as float32 [3, H, W] in [0, 1], resized to the model's input size.

    Decoded as the training images were: 8-bit RGB by the file's real value range (engine.image_file:
    a 16-bit PNG is scaled, not clipped to white), and a file over its pixel limit is refused."""
    import numpy as np

    try:
        rgb = open_rgb(path, size)
    except ImageFileError as exc:
        raise ExportError(str(exc)) from None
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div(255.0)


def predict_images(run: Run, images: list[Path], checkpoint: str = "best", top_k: int = 3) -> list[dict[str, Any]]:
    """Top-k classes with calibrated probabilities for each image file: [{image, top: [(class, p)]}].
    The classes, normalization and image size are the run's own, stored when it trained."""
    d = deploy_model(run, checkpoint)
    if d.info.channel_order != "RGB":
        raise ExportError(f"run {run.run_id}'s model takes {d.info.channels}-channel images; predict reads RGB image files")
    batch = torch.stack([load_image(Path(p), (d.info.height, d.info.width)) for p in images])
    with torch.no_grad():
        probs = torch.softmax(d.model(batch).double(), dim=1)
    top = probs.topk(min(top_k, len(d.info.classes)), dim=1)
    return [{"image": str(p), "checkpoint": d.checkpoint, "step": d.step, "temperature": float(d.model.temperature),
             "calibrated": d.calibration is not None, "calibration": d.calibration_note,
             "top": [(d.info.classes[i], float(v)) for v, i in zip(vals.tolist(), idx.tolist())]}
            for p, vals, idx in zip(images, top.values, top.indices)]
