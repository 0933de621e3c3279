"""Training Cockpit: the terminal surfaces (TUI, headless CLI, reports) over the engine's run store."""

from engine import __version__

__all__ = ["__version__"]
