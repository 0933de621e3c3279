"""System metrics: the sampler (psutil, NVML through nvidia-ml-py), its cadence, its catalogue
entries, and the rows a real run writes to run.db."""

from __future__ import annotations

import sys
import types

from engine.contracts import metric_info
from engine.spec import RunSpec, load_spec
from engine.store import Run
from engine.system import SystemSampler

from .conftest import TINY_SETS


def test_on_a_cpu_box_the_host_is_sampled_and_there_is_no_gpu(tmp_path):
    s = SystemSampler([], tmp_path, every_s=60)
    assert s.gpus() == []
    rows = dict(s.rows(now=100.0))
    assert {"system/cpu", "system/ram", "system/ram_gb", "system/worker_ram_gb", "system/disk"} <= set(rows)
    assert 0 <= rows["system/cpu"] <= 1 and 0 < rows["system/ram"] < 1 and rows["system/worker_ram_gb"] > 0
    assert not any(n.startswith("system/gpu") for n in rows)
    assert s.rows(now=130.0) == [], "time-based: nothing again before every_s has passed"
    assert s.rows(now=161.0), "and again after it"


def _fake_nvml(monkeypatch, devices: dict[str, int]) -> types.SimpleNamespace:
    """A pynvml stand-in with devices by NVML index (name -> used GB); index 1's power is unsupported."""
    handles = {i: (i, name, gb) for i, (name, gb) in enumerate(devices.items())}

    def power(h):
        if h[0] == 1:
            raise RuntimeError("not supported")
        return 250_000

    fake = types.SimpleNamespace(
        NVML_TEMPERATURE_GPU=0, nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: handles[i], nvmlDeviceGetHandleByUUID=lambda u: handles[int(u[-1])],
        nvmlDeviceGetName=lambda h: h[1].encode(),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=h[2] * 2**30, total=80 * 2**30),
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=90),
        nvmlDeviceGetTemperature=lambda h, _k: 70, nvmlDeviceGetPowerUsage=power)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake


def test_each_device_is_read_through_nvml_as_torch_numbers_it(monkeypatch, tmp_path):
    _fake_nvml(monkeypatch, {"GPU A": 10, "GPU B": 20, "GPU C": 40})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,1")  # torch's cuda:0 is NVML's 2, cuda:1 is NVML's 1
    s = SystemSampler([0, 1], tmp_path)
    assert [(g["index"], g["name"]) for g in s.gpus()] == [(0, "GPU C"), (1, "GPU B")]
    rows = dict(s.sample())
    assert rows["system/gpu0/util"] == 0.9 and rows["system/gpu0/mem_gb"] == 40 and rows["system/gpu0/mem"] == 0.5
    assert rows["system/gpu0/temp_c"] == 70 and rows["system/gpu0/power_w"] == 250
    assert rows["system/gpu1/mem_gb"] == 20 and "system/gpu1/power_w" not in rows, "an unsupported read is left out"


def test_every_system_metric_has_a_label_unit_and_format(monkeypatch, tmp_path):
    _fake_nvml(monkeypatch, {"GPU A": 10})
    for name, value in SystemSampler([0], tmp_path).sample():
        info = metric_info(name)
        assert info.group == "system" and info.label != name.replace("_", " "), name
        assert info.format(value) not in ("", "–")
    assert metric_info("system/gpu0/temp_c").format(71.4) == "71" and metric_info("system/gpu0/temp_c").unit == "°C"
    assert metric_info("system/cpu").format(0.375) == "38%"


def test_a_run_stores_system_metrics_and_says_it_has_no_gpu(tmp_path):
    from engine.train import Trainer

    spec = load_spec(None, [*TINY_SETS, "train.epochs=1", "data.synthetic_train=1024"])
    run = Run.create(tmp_path, spec)
    assert Trainer(spec, run, log=lambda _m: None).fit() == "finished"
    assert run.meta()["gpus"] == []
    assert run.series("system/cpu") and run.series("system/ram_gb"), "sampled at the first window flush"
    assert len(run.series("system/cpu")) < len(run.series("train_loss")), "time-based, not per window"


def test_reports_show_the_system_metrics_and_say_no_gpu(tmp_path):
    from cockpit.report import summarize
    from cockpit.report.render.md import render_markdown

    gpu_run, cpu_run = (Run.create(tmp_path, RunSpec(name=n)) for n in ("gpu", "cpu"))
    host = [(s, s / 10, "system/cpu", 0.5) for s in (10, 20)] + [(s, s / 10, "system/ram_gb", 3.0) for s in (10, 20)]
    gpu_run.add_metrics(host + [(s, s / 10, "system/gpu0/util", 0.9) for s in (10, 20)]
                        + [(s, s / 10, "system/gpu0/temp_c", 70.0) for s in (10, 20)])
    cpu_run.add_metrics(host)
    gpu_md, cpu_md = (render_markdown(summarize(r)) for r in (gpu_run, cpu_run))
    assert "| GPU utilisation (gpu0) | 90% |" in gpu_md and "| GPU temperature (gpu0) (°C) | 70 |" in gpu_md
    assert "| CPU (all cores) | 50% |" in cpu_md and "no GPU" in cpu_md and "no GPU" not in gpu_md
