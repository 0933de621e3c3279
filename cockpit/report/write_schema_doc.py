"""Rewrite docs/report-schema.md's tables from the report's types: `python -m cockpit.report.write_schema_doc [PATH]`."""

from __future__ import annotations

import sys
from pathlib import Path

from .schema import render_doc

DOC = Path(__file__).resolve().parents[2] / "docs" / "report-schema.md"

if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DOC
    path.write_text(render_doc(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {path}")
