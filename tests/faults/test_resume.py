"""Stop and resume gives the same run as never stopping: same per-step losses, same weights."""

from __future__ import annotations

import pytest
import torch

from engine import checkpoint as ckpt
from engine.spec import load_spec
from engine.store import Run
from engine.train import Trainer

SETS = ["data.synthetic_train=256", "data.synthetic_test=64", "train.batch_size=32", "train.epochs=3",
        "monitor.every=1", "train.threads=1", "augment.translate=2", "augment.erasing.p=0.5",
        "augment.color_jitter.p=0.5"]


class StopAt:
    """A command source stand-in: requests a stop once the trainer reaches a step."""

    def __init__(self, trainer: Trainer, step: int):
        self.trainer, self.step = trainer, step
        original = trainer.commands.poll

        def poll(force: bool = False) -> None:
            original(force)
            if trainer.step == self.step:
                trainer.stop_request = ("stopped", "test stop")

        trainer.commands.poll = poll


def train(tmp_path, name: str, stop_at: int | None = None) -> Run:
    spec = load_spec(None, SETS)
    run = Run.create(tmp_path / name, spec)
    trainer = Trainer(spec, run, log=lambda _m: None)
    if stop_at is not None:
        StopAt(trainer, stop_at)
        assert trainer.fit() == "stopped"
        trainer = Trainer(spec, run, log=lambda _m: None)
        trainer.resume()
    assert trainer.fit() == "finished"
    return run


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    return train(tmp_path_factory.mktemp("straight"), "a")


@pytest.mark.parametrize("stop_at", [8, 13], ids=["epoch-boundary", "mid-epoch"])
def test_stop_and_resume_equals_an_uninterrupted_run(tmp_path, straight, stop_at):
    resumed = train(tmp_path, "b", stop_at)
    a, b = straight.series("train_loss"), resumed.series("train_loss")
    assert [s for s, _ in b] == list(range(1, 25)), "every step once: no duplicates, no gaps"
    assert a == b, "per-step losses equal exactly"
    wa = ckpt.load(ckpt.path_for(straight.checkpoints, "last"))["model"]
    wb = ckpt.load(ckpt.path_for(resumed.checkpoints, "last"))["model"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
