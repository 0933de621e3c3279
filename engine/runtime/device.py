"""The device a run trains on, its AMP settings and its name in the run store."""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch

from ..contracts import UsageError


class DeviceError(UsageError, RuntimeError):
    """The device the spec asks for is not available."""


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("train.device is 'cuda' but no CUDA device is available; set train.device=auto or cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def resolve_amp(amp: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use GradScaler). On the CPU only "bf16" by name turns autocast on (CPU
    autocast supports bf16, so the GPU's bf16 path runs there too); "auto" and "fp16" train in fp32."""
    if device.type == "cpu" and amp == "bf16":
        return torch.bfloat16, False
    if device.type != "cuda" or amp == "off":
        return None, False
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return (torch.bfloat16, False) if amp == "bf16" else (torch.float16, True)


def autocast_for(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
