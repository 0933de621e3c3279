"""The contracts that cross the run store: every metric a real run writes is in the catalogue, every
result the engine stores reads back as its model, and commands validate at the door."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.contracts import (COMMAND_KINDS, RESULT_MODELS, CommandError, Continue, SetLR, format_metric, metric_info,
                              parse_command)
from engine.spec import load_spec
from engine.store import Run

from .conftest import ROOT

# every instrument on, every step sampled, an SE net (sigmoid gates), a validation split, SWA at the end
EVERYTHING = ["data.synthetic_train=128", "data.synthetic_test=64", "data.val_size=32", "train.batch_size=32",
              "train.epochs=2", "train.threads=1", "monitor.every=2", "model.name=resnet18", "model.width=0.125",
              "model.se=true", "monitor.grad_flow_every=1",
              "monitor.activations_every=1", "monitor.difficulty_every=1", "optim.name=sgd",
              "optim.layer_lr={stem = 0.5}", "swa.enabled=true", "swa.start=0.5", "evaluate.calibrate=true",
              "evaluate.tta=true"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Run:
    """A real worker process trains a small run end to end, finishing passes included."""
    run = Run.create(tmp_path_factory.mktemp("contracts"), load_spec(None, EVERYTHING))
    proc = subprocess.run([sys.executable, "-m", "engine.worker", str(run.path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def test_every_metric_a_run_writes_is_in_the_catalogue(finished_run):
    names = finished_run.metric_names()
    assert {"train_loss", "lr", "grad_norm", "test_acc", "swa_test_acc"} <= set(names)
    unknown = [n for n in names if metric_info(n).group == "other"]
    assert unknown == [], f"metrics without a catalogue entry: {unknown}"


def test_every_result_a_run_stores_reads_back_typed(finished_run):
    kinds = {r.kind for r in finished_run.results()}
    assert {"hardest", "swa", "calibrate", "tta", "confusion"} <= kinds
    for row in finished_run.results():
        assert isinstance(row.data, RESULT_MODELS[row.kind])
    raw = finished_run.con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert raw == len(finished_run.results())  # nothing the engine wrote was dropped on read


def test_each_result_names_the_accuracy_it_is_about(finished_run):
    latest = {r.kind: r.data for r in finished_run.results()}
    assert latest["calibrate"].headline_acc == latest["calibrate"].after.acc
    assert latest["tta"].headline_acc == latest["tta"].tta_acc
    assert latest["swa"].headline_acc == latest["swa"].swa_acc == finished_run.series("swa_test_acc")[-1][1]
    assert latest["hardest"].headline_acc is None


@pytest.mark.parametrize("name, value, shown", [
    ("test_acc", 0.91234, "91.23%"), ("train_loss", 0.123456, "0.1235"), ("lr", 0.05, "0.05"),
    ("images_per_s", 12345.6, "12,346"), ("step_time_ms", 12.34, "12.3"), ("lr/stem", 0.005, "0.005"),
    ("act/dead/layer1", 0.5, "50.00%"), ("grad_norm", None, "–"), ("grad_norm", float("nan"), "nan"),
])
def test_values_are_formatted_from_the_catalogue(name, value, shown):
    assert format_metric(name, value) == shown


def test_families_name_their_member():
    assert metric_info("grad_norm/layer3").label == "grad norm layer3"
    assert metric_info("grad_norm/layer3").log and metric_info("act/saturation/layer2").group == "activations"


def test_commands_parse_into_their_models():
    assert parse_command("continue") == Continue()
    assert parse_command("set_lr", {"layer": "stem", "mult": 0.5}) == SetLR(layer="stem", mult=0.5)
    assert parse_command("tta", {"views": "identity, flip"}).views == ["identity", "flip"]
    assert set(COMMAND_KINDS) == {"stop", "pause", "continue", "checkpoint", "set_lr", "swa", "calibrate", "tta",
                                  "confusion"}
    with pytest.raises(CommandError, match="translate"):
        parse_command("tta", {"translate": -1})
    with pytest.raises(CommandError, match="unknown command"):
        parse_command("resume")


def _meta_writes() -> dict[str, set[str]]:
    """Every key a module writes into run meta: keywords of set_meta(...) and of the sink's meta(...),
    and the keys of the meta a run is made with (Run.create). {key: {file:line}}."""
    import ast

    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / "engine").rglob("*.py")) + sorted((ROOT / "cockpit").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and (node.func.attr == "set_meta" or (node.func.attr == "meta" and node.keywords))):
                for kw in node.keywords:
                    out.setdefault(kw.arg or "**", set()).add(f"{path.relative_to(ROOT)}:{node.lineno}")
            if path == ROOT / "engine" / "store" / "run.py" and isinstance(node, ast.Assign) \
                    and any(isinstance(t, ast.Name) and t.id == "meta" for t in node.targets) and isinstance(node.value, ast.Dict):
                for k in node.value.keys:
                    if isinstance(k, ast.Constant):
                        out.setdefault(k.value, set()).add(f"{path.relative_to(ROOT)}:{node.lineno}")
    return out


def test_every_meta_key_a_module_writes_is_typed_in_run_meta():
    from engine.contracts import RunMeta

    writes = _meta_writes()
    assert "state" in writes and "run_id" in writes, "the scan finds the writers"
    writes.pop("**", None)  # forwarding (the sink's meta(**values)) is typed at its own callers
    unknown = {k: sorted(v) for k, v in writes.items() if k not in RunMeta.__annotations__}
    assert unknown == {}, f"meta keys written but not declared in engine.contracts.RunMeta: {unknown}"


def test_every_state_a_module_records_is_a_run_state():
    import ast
    from typing import get_args

    from engine.contracts import RunState
    from engine.store import ACTIVE_STATES

    states = set(get_args(RunState))
    assert set(ACTIVE_STATES) <= states
    recorded = set()
    for path in sorted((ROOT / "engine").rglob("*.py")) + sorted((ROOT / "cockpit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("set_meta", "meta"):
                recorded |= {kw.value.value for kw in node.keywords
                             if kw.arg == "state" and isinstance(kw.value, ast.Constant)}
    assert recorded and recorded <= states, recorded - states
