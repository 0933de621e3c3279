"""Training Cockpit engine: spec, data, augmentation, models, loop and run store.

Usable without the cockpit: it never imports Textual, Rich or Typer.
"""

__version__ = "0.1.0"
