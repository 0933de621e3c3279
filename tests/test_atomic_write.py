"""Atomic writes: a reader sees the old file or the new one, never a half-written one."""

from __future__ import annotations

import pytest

from engine.atomic_write import clean_temp_files, write_atomic, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "report.md"
    write_text_atomic(target, "old")

    def half_then_fail(f):
        f.write(b"new but not fini")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_the_new_file_replaces_the_old_one_only_after_the_hook(tmp_path):
    target = tmp_path / "last.pt"
    write_text_atomic(target, "old")
    seen = []
    write_atomic(target, lambda f: f.write(b"new"), before_rename=lambda: seen.append(target.read_text()))
    assert seen == ["old"] and target.read_text() == "new"


def test_temp_files_left_by_a_crash_are_cleaned_and_finished_files_kept(tmp_path):
    (tmp_path / ".last.pt.tmp-123").write_bytes(b"partial")
    (tmp_path / "last.pt").write_bytes(b"good")
    assert [p.name for p in clean_temp_files(tmp_path)] == [".last.pt.tmp-123"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
