"""Two `join` workers on one study in a real PostgreSQL (machines that share no filesystem share a
sweep this way). .ci/run starts a throwaway cluster (.ci/postgres) and sets COCKPIT_TEST_PG_URL."""

from __future__ import annotations

import os
import uuid

import pytest

from .test_sweep_run import two_workers_share_one_study

PG_URL = os.environ.get("COCKPIT_TEST_PG_URL", "")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not PG_URL, reason="no PostgreSQL: set COCKPIT_TEST_PG_URL (.ci/run starts one with "
                                                    ".ci/postgres where Debian's postgresql package installs)")]


def test_two_join_workers_on_one_postgresql_study_never_run_the_same_trial(tmp_path, runs_dir):
    pytest.importorskip("psycopg")
    # one database for several test runs: the study name must be new each time
    two_workers_share_one_study(tmp_path, runs_dir, storage=PG_URL, name=f"pair_{uuid.uuid4().hex[:8]}")
    assert not list(runs_dir.glob("sweeps/*/journal.log"))  # the study lived in the database
