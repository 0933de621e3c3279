"""From run to use: a run's model as safetensors and ONNX, with a model card, and predictions.

The exported model is self-contained: it takes float32 images in [0, 1] (N, 3, H, W), normalizes
them with the run's own mean and std, and returns logits divided by the temperature fitted by
`cockpit calibrate` on that checkpoint (1.0 when it was never calibrated), so a softmax of its
output is the calibrated probability. Files go to `runs/<id>/export/`, each written atomically:

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

from .augment import normalization, to_float
from .contracts import CalibrationResult, TTAResult, UsageError
from .data import Dataset, load_dataset
from .evaluate import evaluate
from .image_file import ImageFileError, open_rgb
from .atomic_write import write_atomic, write_text_atomic
from .models import build_model
from .passes import load_weights
from .store import Run

__all__ = ["DeployModel", "ExportError", "Exported", "deploy_model", "export_run", "predict_images", "EXPORT_DIR"]

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


def _latest(run: Run, kind: str, checkpoint: str):
    rows = [r for r in run.results(kind) if r.checkpoint == checkpoint]
    return rows[-1].data if rows else None


def deploy_model(run: Run, checkpoint: str = "best", data: Dataset | None = None) -> tuple[DeployModel, str, dict, Dataset]:
    """The run's model ready to use: (model in eval mode on the CPU, checkpoint file used, its state, data)."""
    spec = run.spec()
    data = data or load_dataset(spec.data, spec.data.seed)
    net = build_model(spec.model, data.num_classes, data.image_shape[-1])
    used, state = load_weights(net, run, checkpoint, "cpu")
    cal = _latest(run, "calibrate", used)
    temperature = cal.temperature if isinstance(cal, CalibrationResult) else 1.0
    model = DeployModel(net, *normalization(spec.augment, data.mean, data.std), temperature, spec.augment.normalize).eval()
    return model, used, state, data


def _card(run: Run, model: DeployModel, used: str, state: dict, data: Dataset, test_acc: float,
          files: dict[str, str]) -> dict[str, Any]:
    spec_text = (run.path / "spec.toml").read_bytes()
    cal, tta = _latest(run, "calibrate", used), _latest(run, "tta", used)
    c, h, w = data.image_shape
    return {
        "run": run.run_id, "checkpoint": used, "step": int(state.get("step", 0)), "model": run.spec().model.name,
        "classes": list(data.classes),
        "input": {"name": "images", "shape": ["batch", c, h, w], "dtype": "float32", "range": [0.0, 1.0],
                  "layout": "NCHW, RGB"},
        "output": {"name": "logits", "meaning": "logits / temperature: softmax gives calibrated probabilities"},
        "normalization": {"mean": list(model.mean.flatten().tolist()), "std": list(model.std.flatten().tolist()),
                          "built_in": True},
        "temperature": float(model.temperature), "calibrated": isinstance(cal, CalibrationResult),
        "accuracy": {"test": test_acc, "test_with_tta": tta.tta_acc if isinstance(tta, TTAResult) else None,
                     "test_images": int(data.test_y.numel())},
        "ece": ({"before": cal.before.ece, "after": cal.after.ece} if isinstance(cal, CalibrationResult) else None),
        "spec_sha256": hashlib.sha256(spec_text).hexdigest(),
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
    """Write runs/<id>/export/: safetensors, ONNX and the model card; returns the folder and the card."""
    model, used, state, data = deploy_model(run, checkpoint)
    log(f"evaluating {used} on {data.test_y.numel():,} test images")
    test_acc = evaluate(model, data.test_x, data.test_y, run.spec().train.eval_batch_size, to_float).acc
    folder = run.path / EXPORT_DIR
    folder.mkdir(exist_ok=True)
    files = {"safetensors": "model.safetensors", "onnx": "model.onnx", "card": "model_card.json"}
    card = _card(run, model, used, state, data, test_acc, files)
    log("writing model.safetensors")
    _save_safetensors(model, folder / files["safetensors"], card)
    log("exporting model.onnx")
    _save_onnx(model, folder / files["onnx"], data.image_shape)
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
    """Top-k classes with calibrated probabilities for each image file: [{image, top: [(class, p)]}]."""
    model, used, _, data = deploy_model(run, checkpoint)
    _, h, w = data.image_shape
    batch = torch.stack([load_image(Path(p), (h, w)) for p in images])
    with torch.no_grad():
        probs = torch.softmax(model(batch).double(), dim=1)
    k = min(top_k, data.num_classes)
    top = probs.topk(k, dim=1)
    return [{"image": str(p), "checkpoint": used, "temperature": float(model.temperature),
             "top": [(data.classes[i], float(v)) for v, i in zip(vals.tolist(), idx.tolist())]}
            for p, vals, idx in zip(images, top.values, top.indices)]
