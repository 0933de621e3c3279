"""Shared fixtures: an isolated runs dir and cache dir, the CLI runner, and paths to ../shared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CIFAR_JPG = SHARED / "data" / "cifar10-jpg.tar.gz"

# small enough for 2 cores: a few seconds end to end through the real worker
TINY_SETS = [
    "data.synthetic_train=256", "data.synthetic_test=128", "train.batch_size=64",
    "train.epochs=2", "monitor.every=1", "train.threads=1",
]


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch) -> Path:
    """Each test its own cache dir (the editor caches its start there), never the user's: a test's editor
    starts cold unless the test warms it."""
    d = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(d))
    return d


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "runs"
    monkeypatch.setenv("COCKPIT_RUNS", str(d))
    return d


def cockpit(*args: str, env: dict | None = None, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `cockpit` CLI in a subprocess (as a user would)."""
    full_env = dict(os.environ, COLUMNS="100", NO_COLOR="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "cockpit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or ROOT)
