"""Headless logic the views share (no Textual, no Rich): tailing a run, launching, the runs index,
the spec form model, finishing rows, formats."""
