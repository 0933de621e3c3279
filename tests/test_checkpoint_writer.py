"""Checkpoints at airbench speed: best.pt only when the selection improves (with no validation split,
once at the end), last.pt once at the end, and the writing done off the training thread with its
errors still reported."""

from __future__ import annotations

import threading

import pytest
import torch

from engine import checkpoint as ckpt
from engine import checkpoint_writer
from engine.checkpoint_writer import CheckpointWriter
from engine.spec import load_spec
from engine.store import Run
from engine.train import Trainer

from .conftest import TINY_SETS


@pytest.fixture
def writes(monkeypatch) -> list[tuple[str, int, str]]:
    """Every checkpoint written: (file name, step, writing thread's name)."""
    seen: list[tuple[str, int, str]] = []
    real = ckpt.save_atomic

    def record(state, path, keep_previous=True):
        seen.append((path.name, int(state["step"]), threading.current_thread().name))
        real(state, path, keep_previous)

    monkeypatch.setattr(ckpt, "save_atomic", record)
    return seen


def fit(tmp_path, *sets: str) -> Run:
    spec = load_spec(None, [*TINY_SETS, "train.epochs=3", *sets])
    run = Run.create(tmp_path, spec)
    assert Trainer(spec, run, log=lambda _m: None).fit() == "finished"
    return run


def test_without_a_validation_split_best_is_written_once_at_the_end_and_last_once_per_epoch(tmp_path, writes):
    run = fit(tmp_path)
    spe = 256 // 64
    assert [(n, s) for n, s, _ in writes] == [("last.pt", spe), ("last.pt", 2 * spe), ("last.pt", 3 * spe),
                                               ("best.pt", 3 * spe)]
    assert all(t.startswith("checkpoint-writer") for _, _, t in writes), "serialized off the training thread"
    best, last = ckpt.load(run.checkpoints / "best.pt"), ckpt.load(run.checkpoints / "last.pt")
    assert best["step"] == last["step"] == 3 * spe
    assert all(torch.equal(best["model"][k], v) for k, v in last["model"].items())


def test_with_a_validation_split_best_is_written_only_when_validation_accuracy_improves(tmp_path, writes):
    run = fit(tmp_path, "data.val_size=64", "train.epochs=6", "train.checkpoint_every=100", "optim.lr=0.3")
    vals = run.series("val_acc")
    improved, top = [], -1.0
    for step, acc in vals:
        if acc > top:
            improved.append(step)
            top = acc
    assert [s for n, s, _ in writes if n == "best.pt"] == improved
    assert [s for n, s, _ in writes if n == "last.pt"] == [vals[-1][0]]  # only at the end
    assert ckpt.load(run.checkpoints / "best.pt")["step"] == improved[-1]


def test_the_writer_keeps_the_state_it_was_given_while_training_changes_the_live_tensors(tmp_path, monkeypatch):
    gate = threading.Event()
    real = ckpt.save_atomic

    def slow(state, path, keep_previous=True):
        gate.wait(10)
        real(state, path, keep_previous)

    monkeypatch.setattr(ckpt, "save_atomic", slow)
    w = torch.zeros(4)
    writer = CheckpointWriter()
    writer.write({"model": {"w": w}, "step": 1}, [tmp_path / "last.pt"])
    w.add_(1.0)  # the next step, in place, while the write is in flight
    gate.set()
    writer.close()
    assert torch.equal(ckpt.load(tmp_path / "last.pt")["model"]["w"], torch.zeros(4))


def test_a_failed_write_is_raised_by_the_next_write_and_by_close(tmp_path, monkeypatch):
    def full(state, path, keep_previous=True):
        raise ckpt.CheckpointError(f"cannot write checkpoint {path}: the disk is full at {path.parent}")

    monkeypatch.setattr(ckpt, "save_atomic", full)
    writer = CheckpointWriter()
    writer.write({"step": 1}, [tmp_path / "last.pt"])
    with pytest.raises(ckpt.CheckpointError, match="the disk is full"):
        writer.write({"step": 2}, [tmp_path / "last.pt"])
    writer.write({"step": 3}, [tmp_path / "last.pt"])
    with pytest.raises(ckpt.CheckpointError, match="the disk is full"):
        writer.close()


def test_a_run_whose_last_checkpoint_cannot_be_written_fails_with_the_write_error(tmp_path, monkeypatch):
    def full(state, path, keep_previous=True):
        raise ckpt.CheckpointError(f"cannot write checkpoint {path}: the disk is full at {path.parent}")

    monkeypatch.setattr(ckpt, "save_atomic", full)
    spec = load_spec(None, [*TINY_SETS, "train.epochs=1"])
    with pytest.raises(ckpt.CheckpointError, match="the disk is full"):
        Trainer(spec, Run.create(tmp_path, spec), log=lambda _m: None).fit()


def test_host_copies_share_no_storage_with_the_live_state():
    live = {"a": torch.ones(3), "nested": [torch.zeros(2), (torch.ones(1), 5)], "n": 1}
    host = checkpoint_writer.to_host(live)
    live["a"].add_(1)
    live["nested"][0].add_(1)
    assert torch.equal(host["a"], torch.ones(3)) and torch.equal(host["nested"][0], torch.zeros(2))
    assert isinstance(host["nested"][1], tuple) and host["n"] == 1
