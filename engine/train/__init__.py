"""Training: the loop (`Trainer.fit`), the one AMP step, the metrics window, sinks, state, commands, SWA."""

from .loop import StopRun, Trainer
from .step import Snapshot, Step, StepOut

__all__ = ["Trainer", "StopRun", "Step", "StepOut", "Snapshot"]
