"""The metric catalogue: the label, unit, format and group of every metric name the engine writes,
including the per-layer, per-group and per-block families."""

from __future__ import annotations

import math
from dataclasses import dataclass


# -------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricInfo:
    """How every view names, formats and groups one metric.

    `fmt` is a format spec for `format(value, fmt)`; `log` says a chart of it reads best on a log scale."""
    name: str
    label: str
    unit: str = ""
    fmt: str = ".4g"
    group: str = "other"
    log: bool = False

    def format(self, value: float | None) -> str:
        return format_metric(self, value)


def _m(name: str, label: str, unit: str = "", fmt: str = ".4g", group: str = "other", log: bool = False) -> MetricInfo:
    return MetricInfo(name, label, unit, fmt, group, log)


PCT, LOSS = ".2%", ".4f"
# the catalogue, in the order a reader wants them (reports list key metrics in this order)
METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    _m("test_acc", "test accuracy", "", PCT, "accuracy"),
    _m("test_loss", "test loss", "", LOSS, "loss"),
    _m("val_acc", "val accuracy", "", PCT, "accuracy"),
    _m("val_loss", "val loss", "", LOSS, "loss"),
    _m("train_acc", "train accuracy", "", PCT, "accuracy"),
    _m("train_loss", "train loss", "", LOSS, "loss"),
    _m("swa_test_acc", "SWA test accuracy", "", PCT, "accuracy"),
    _m("swa_test_loss", "SWA test loss", "", LOSS, "loss"),
    _m("swa_val_acc", "SWA val accuracy", "", PCT, "accuracy"),
    _m("swa_val_loss", "SWA val loss", "", LOSS, "loss"),
    _m("lr", "learning rate", "", ".3g", "lr"),
    _m("grad_norm", "grad norm", "", ".3g", "grad", log=True),
    _m("grad_norm_max", "grad norm (max)", "", ".3g", "grad", log=True),
    _m("act/saturation", "activation saturation", "", PCT, "activations"),
    _m("act/dead", "dead units", "", PCT, "activations"),
    _m("act/gate", "gate saturation", "", PCT, "activations"),
    _m("difficulty/p10", "per-sample loss p10", "", ".3g", "difficulty"),
    _m("difficulty/p50", "per-sample loss p50", "", ".3g", "difficulty"),
    _m("difficulty/p90", "per-sample loss p90", "", ".3g", "difficulty"),
    _m("difficulty/max", "per-sample loss max", "", ".3g", "difficulty"),
    _m("images_per_s", "images / s", "images/s", ",.0f", "throughput"),
    _m("step_time_ms", "step time", "ms", ",.1f", "throughput"),
    _m("data_time_ms", "data time", "ms", ",.1f", "throughput"),
    _m("memory_gb", "peak memory", "GB", ".2f", "throughput"),
    _m("loss_scale", "AMP loss scale", "", ",.0f", "throughput"),
    _m("skipped_steps", "skipped steps (window)", "steps", ",.0f", "health"),
    _m("skipped_total", "skipped steps (total)", "steps", ",.0f", "health"),
    _m("system/cpu", "CPU (all cores)", "", ".0%", "system"),
    _m("system/ram", "RAM used", "", ".0%", "system"),
    _m("system/ram_gb", "RAM used", "GB", ".1f", "system"),
    _m("system/worker_ram_gb", "worker RSS", "GB", ".2f", "system"),
    _m("system/disk", "disk used (run dir)", "", ".0%", "system"),
)}

# per GPU, `system/gpu<cuda index>/<what>` (engine/system.py samples them)
SYSTEM_GPU: dict[str, MetricInfo] = {m.name: m for m in (
    _m("util", "GPU utilisation", "", ".0%", "system"),
    _m("mem", "GPU memory used", "", ".0%", "system"),
    _m("mem_gb", "GPU memory used", "GB", ".1f", "system"),
    _m("temp_c", "GPU temperature", "°C", ".0f", "system"),
    _m("power_w", "GPU power", "W", ".0f", "system"),
)}

# families: a prefix, then a layer / group / block name (the label gets the name appended)
_FAMILIES: tuple[MetricInfo, ...] = (
    _m("lr/", "learning rate", "", ".3g", "lr"),
    _m("grad_norm/", "grad norm", "", ".3g", "grad", log=True),
    _m("update_ratio/", "update ratio", "", ".3g", "grad", log=True),
    _m("act/zeros/", "zeros", "", PCT, "activations"),
    _m("act/dead/", "dead units", "", PCT, "activations"),
    _m("act/saturation/", "saturation", "", PCT, "activations"),
    _m("act/mean/", "activation mean", "", ".3g", "activations"),
    _m("act/std/", "activation std", "", ".3g", "activations"),
    _m("act/gate/", "gate saturation", "", PCT, "activations"),
    _m("act/gate_mean/", "gate mean", "", ".3g", "activations"),
    _m("difficulty/hist/", "per-sample loss histogram bin", "", PCT, "difficulty"),
    _m("lrfind/", "LR range test", "", ".4g", "lr_find"),
    _m("system/", "system", "", ".4g", "system"),
)


def metric_info(name: str) -> MetricInfo:
    """The catalogue entry for any metric name; unknown names get a plain, generic entry."""
    info = METRICS.get(name)
    if info is not None:
        return info
    if name.startswith("system/gpu") and name.count("/") == 2:
        gpu, what = name.split("/")[1:]
        if (g := SYSTEM_GPU.get(what)) is not None:
            return MetricInfo(name, f"{g.label} ({gpu})", g.unit, g.fmt, g.group)
    for fam in _FAMILIES:
        if name.startswith(fam.name):
            part = name[len(fam.name):]
            return MetricInfo(name, f"{fam.label} {part}", fam.unit, fam.fmt, fam.group, fam.log)
    return MetricInfo(name, name.replace("_", " "))


def format_metric(info: MetricInfo | str, value: float | None) -> str:
    """A value as every view shows it: "–" for a missing one, "nan"/"inf" spelled out."""
    if isinstance(info, str):
        info = metric_info(info)
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format(value, info.fmt)
