"""The GPU's code paths run on the CPU too: bf16 autocast, channels_last and torch.compile."""

from __future__ import annotations

import shutil

import pytest
import torch

from engine.passes.common import guard_instruments
from engine.runtime.device import resolve_amp
from engine.setup import build
from engine.spec import load_spec
from engine.store import Run
from engine.train.step import Step

TINY = ["data.synthetic_train=64", "data.synthetic_test=32", "train.batch_size=32", "train.epochs=1",
        'train.device="cpu"', "train.threads=1", "monitor.every=1"]


def test_bf16_by_name_and_channels_last_run_on_the_cpu():
    assert resolve_amp("bf16", torch.device("cpu")) == (torch.bfloat16, False)
    assert resolve_amp("auto", torch.device("cpu")) == (None, False)  # auto stays fp32 on the CPU
    assert not build(load_spec(None, TINY)).channels_last  # on the CPU only when asked for
    p = build(load_spec(None, TINY + ['train.amp="bf16"', "train.channels_last=true", "train.channels_last_cpu=true"]))
    assert p.amp_dtype == torch.bfloat16 and p.channels_last and not p.scaler.is_enabled()
    conv = next(m for m in p.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    xb, yb = next(p.train_loader.forever())
    x = p.prepare(xb)
    assert x.is_contiguous(memory_format=torch.channels_last)
    out = Step(p, guard_instruments(p, p.spec), 0.0)(x, yb, 1)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.loss) and not bool(out.skip)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile's inductor backend builds C++ kernels on the CPU: no C compiler here")
def test_compile_with_bf16_and_channels_last_trains_on_the_cpu(tmp_path):
    """The fast94 settings (compile, bf16, channels_last) train a tiny run end to end on the CPU."""
    from engine.train import Trainer

    spec = load_spec(None, TINY + ["train.compile=true", 'train.amp="bf16"', "train.channels_last_cpu=true",
                                   "monitor.activations_every=0"])
    run = Run.create(tmp_path / "runs", spec)
    assert Trainer(spec, run, log=lambda _m: None).fit() == "finished"
    loss = run.series("train_loss")
    assert loss and all(v == v for _, v in loss)  # finite, not NaN
    assert run.series("test_acc")
