"""The wheel users install (`pipx install .`, `pip install .`) carries every preset (the project's
presets/ folder, as cockpit/presets/) and the stylesheet.

.ci/wheel_check goes further: it installs the wheel with its dependencies alone into a fresh venv,
imports every module and runs presets by name."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from .conftest import ROOT


@pytest.mark.slow
def test_the_wheel_ships_every_preset_and_the_stylesheet(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=120)
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # the project's presets/ folder is the one source; the wheel carries it inside the package
    shipped = {"cockpit/" + p.relative_to(ROOT).as_posix() for p in (ROOT / "presets").rglob("*.toml")}
    assert len(shipped) > 15 and shipped <= names, f"missing from the wheel: {sorted(shipped - names)}"
    assert "cockpit/presets/sgd_cosine.toml" in names and "cockpit/tui/cockpit.tcss" in names
