"""Temperature calibration says how it was fitted: log_t (LBFGS on log T from T = 1, line search; the default)
or the guide's procedure (LBFGS lr 0.01 on T from 1.5, 50 steps), which can diverge; a T it gives that is not
positive, or fits the validation split worse than none, is an error and never applied or stored."""

from __future__ import annotations

import pytest
import torch

from engine.contracts import CALIBRATE_METHODS, Calibrate, CalibrationResult
from engine.evaluate import TemperatureFitError, calibrate, fit_temperature, fit_temperature_guide
from engine.passes import PassError, run_pass
from engine.spec import load_spec
from engine.store import Run
from engine.train import Trainer

from .conftest import cockpit

UNDER_CONFIDENT = ["data.synthetic_train=256", "data.synthetic_test=128", "data.val_size=64", "train.batch_size=64",
                   "train.epochs=2", "train.threads=1", "train.label_smoothing=0.8"]


def _logits(scale: float, n: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose best temperature is about `scale` (labels drawn from their softmax at T = 1)."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, 10, generator=g) * 3
    labels = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
    return z * scale, labels


@pytest.mark.slow  # the guide's procedure: 50 x 20 LBFGS iterations
def test_the_guide_s_fit_diverges_on_under_confident_logits_and_is_refused():
    torch.set_num_threads(1)
    logits, labels = _logits(0.7)
    assert 0.6 < fit_temperature(logits, labels) < 0.8  # log_t finds the minimum below 1
    with pytest.raises(TemperatureFitError, match=r"the guide's temperature fit diverged to T = -\d+.*must be positive"):
        fit_temperature_guide(logits, labels)
    with pytest.raises(TemperatureFitError, match="nothing applied"):
        calibrate(logits, labels, logits, labels, method="guide")


def test_the_guide_s_fit_lands_near_log_t_on_over_confident_logits_and_is_named():
    torch.set_num_threads(1)
    logits, labels = _logits(1.5)
    out = calibrate(logits, labels, logits, labels, method="guide")
    assert out["method"] == "guide" and abs(out["temperature"] - fit_temperature(logits, labels)) < 2e-2
    assert calibrate(logits, labels, logits, labels)["method"] == "log_t"
    with pytest.raises(ValueError, match="unknown calibration method"):
        calibrate(logits, labels, logits, labels, method="lbfgs")


@pytest.fixture(scope="module")
def under_confident_run(tmp_path_factory) -> Run:
    """A finished tiny run trained with heavy label smoothing: its logits want T < 1."""
    spec = load_spec(None, UNDER_CONFIDENT)
    run = Run.create(tmp_path_factory.mktemp("cal") / "runs", spec, preset="test")
    assert Trainer(spec, run, log=lambda _m: None).fit() == "finished"
    run.set_meta(state="finished")
    return run


def test_a_failed_guide_fit_stores_nothing_and_log_t_is_stored_with_its_name(under_confident_run):
    run = under_confident_run
    with pytest.raises(PassError, match=r"calibration of best.pt: the guide's temperature fit .*nothing applied"):
        run_pass(run, Calibrate(method="guide"))
    assert run.results("calibrate") == []
    res = run_pass(run, Calibrate())
    assert isinstance(res, CalibrationResult) and res.method == "log_t" and 0 < res.temperature < 1
    assert run.results("calibrate")[-1].data.method == "log_t"
    assert any("(log_t)" in e["message"] for e in run.events_since(0) if e["kind"] == "calibrated")


def test_a_result_stored_before_methods_were_named_reads_as_log_t(under_confident_run):
    data = under_confident_run.results("calibrate")[-1].data.model_dump()
    data.pop("method")
    assert CalibrationResult.model_validate(data).method == "log_t"


@pytest.mark.slow
def test_the_cli_names_the_method_and_refuses_a_failed_guide_fit_with_one_line(under_confident_run):
    run = under_confident_run
    res = cockpit("calibrate", str(run.path), "--method", "guide", timeout=300)
    assert res.returncode == 2 and "nothing applied" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = cockpit("calibrate", str(run.path), "--method", "bogus")
    assert res.returncode == 2 and "--method: unknown method 'bogus'; valid: log_t, guide" in res.stderr
    res = cockpit("calibrate", str(run.path), timeout=300)
    assert res.returncode == 0 and f"by log_t: {CALIBRATE_METHODS['log_t']}" in " ".join(res.stdout.split())
    res = cockpit("report", str(run.path), "--format", "md", timeout=300)
    assert f"fitted on the validation split by log\\_t ({CALIBRATE_METHODS['log_t']})" in \
        (run.path / "report.md").read_text()


def test_the_worker_s_end_of_training_guide_fit_failing_leaves_the_run_finished(tmp_path):
    from engine.worker import _train

    spec = load_spec(None, UNDER_CONFIDENT + ["evaluate.calibrate=true", "evaluate.calibrate_method=guide"])
    run = Run.create(tmp_path / "runs", spec, preset="test")
    said: list[str] = []
    assert _train(Trainer(spec, run, log=said.append)) == "finished"
    assert run.results("calibrate") == []
    failed = [e for e in run.events_since(0) if e["kind"] == "calibrate_failed"]
    assert len(failed) == 1 and failed[0]["level"] == "error" and "nothing applied" in failed[0]["message"]
    assert any("calibrate failed" in m for m in said)
