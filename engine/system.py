"""System metrics, sampled by the worker: GPU utilisation, memory, temperature and power per device
(NVML through nvidia-ml-py), and CPU, RAM and disk (psutil).

Torch-free and cheap: `SystemSampler.rows()` returns nothing until `every_s` has passed since the
last sample, and a sample is a few NVML and psutil calls on the host (about 0.1 ms on CPU), never a
device sync. The run store gets `system/...` rows (names in the catalogue, engine/contracts/metrics.py)
and meta `gpus` (the devices sampled, [] on a box with no GPU: the views then say "no GPU").
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil

EVERY_S = 2.0  # one sample per this many seconds at most (taken at a window flush)


def _nvml():
    """The pynvml module, initialised; None where there is no NVIDIA driver (or no nvidia-ml-py)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no library, no driver, no device: the GPU part says so
        return None


def _visible_handles(nvml, indices: list[int]) -> list[tuple[int, Any]]:
    """(torch's CUDA index, NVML handle) per device, through CUDA_VISIBLE_DEVICES when it is set
    (torch's cuda:0 is then the first device it lists, by index or by UUID)."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    out = []
    for i in indices:
        try:
            if not visible:
                out.append((i, nvml.nvmlDeviceGetHandleByIndex(i)))
            elif visible[i].isdigit():
                out.append((i, nvml.nvmlDeviceGetHandleByIndex(int(visible[i]))))
            else:
                out.append((i, nvml.nvmlDeviceGetHandleByUUID(visible[i])))
        except Exception:  # an index NVML does not know (MIG, a masked device): left out
            continue
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SystemSampler:
    """Samples the host and the given CUDA devices at most every `every_s` seconds.

    `cuda_indices`: torch's indices of the devices this run trains on ([] on CPU); under torchrun the
    store rank passes every local rank's device, so each rank's GPU is shown. `disk`: a folder on
    the disk to report (the run dir)."""

    def __init__(self, cuda_indices: list[int], disk: Path | str = ".", every_s: float = EVERY_S):
        self.every_s, self.disk = every_s, str(disk)
        self._last = -float("inf")
        self._nvml = _nvml() if cuda_indices else None
        self._gpus = _visible_handles(self._nvml, cuda_indices) if self._nvml else []
        self._process = psutil.Process()
        psutil.cpu_percent(None)  # the first call starts psutil's CPU interval

    def gpus(self) -> list[dict[str, Any]]:
        """The devices sampled, for meta `gpus`: index, name and total memory (GB)."""
        out = []
        for i, h in self._gpus:
            try:
                mem = self._nvml.nvmlDeviceGetMemoryInfo(h)
                out.append({"index": i, "name": _text(self._nvml.nvmlDeviceGetName(h)), "memory_gb": mem.total / 2**30})
            except Exception:
                out.append({"index": i, "name": f"cuda:{i}", "memory_gb": None})
        return out

    def rows(self, now: float | None = None) -> list[tuple[str, float]]:
        """(name, value) rows when a sample is due, else []."""
        now = time.monotonic() if now is None else now
        if now - self._last < self.every_s:
            return []
        self._last = now
        return self.sample()

    def sample(self) -> list[tuple[str, float]]:
        """One sample now: host, then each GPU (a value NVML cannot give is left out)."""
        vm = psutil.virtual_memory()
        rows = [("system/cpu", psutil.cpu_percent(None) / 100), ("system/ram", vm.percent / 100),
                ("system/ram_gb", (vm.total - vm.available) / 2**30),
                ("system/worker_ram_gb", self._process.memory_info().rss / 2**30)]
        try:
            rows.append(("system/disk", psutil.disk_usage(self.disk).percent / 100))
        except OSError:
            pass
        for i, h in self._gpus:
            rows += self._gpu_rows(i, h)
        return rows

    def _gpu_rows(self, i: int, h: Any) -> list[tuple[str, float]]:
        nvml, out = self._nvml, []
        reads = (("util", lambda: nvml.nvmlDeviceGetUtilizationRates(h).gpu / 100),
                 ("mem_gb", lambda: nvml.nvmlDeviceGetMemoryInfo(h).used / 2**30),
                 ("mem", lambda: (m := nvml.nvmlDeviceGetMemoryInfo(h)).used / max(m.total, 1)),
                 ("temp_c", lambda: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
                 ("power_w", lambda: nvml.nvmlDeviceGetPowerUsage(h) / 1000))
        for name, read in reads:
            try:
                out.append((f"system/gpu{i}/{name}", float(read())))
            except Exception:  # not supported on this device (power on some boards): left out
                continue
        return out

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None
