"""The base of the errors a user fixes by changing their input. It lives apart from the typed contracts
(engine.contracts re-exports it) so that the run store imports without pydantic: the TUI lists runs and
paints its first screen before it needs any model."""

from __future__ import annotations


class UsageError(Exception):
    """A problem the user can fix by changing what they typed or pointed at (spec, data, device,
    checkpoint, run reference). The CLI prints the message alone and exits 2; the worker records the
    run as failed with this message and `error_kind = "usage"`."""
