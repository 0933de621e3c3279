"""Training: the loop (`Trainer.fit`), the one AMP step, the metrics window, sinks, state, commands, SWA."""

from ..runtime.device import DeviceError, resolve_amp, resolve_device  # noqa: F401 (their old place)
from .loop import StopRun, Trainer
from .step import Snapshot, Step, StepOut

__all__ = ["Trainer", "StopRun", "Step", "StepOut", "Snapshot"]
