"""Presets as a new user types them: the project's `presets/` folder is the one source of the shipped
presets; `presets/NAME.toml` works from the repository root and, typed elsewhere, names the shipped
preset; a misspelt name is answered with the closest names."""

from __future__ import annotations

from .conftest import ROOT, cockpit


def test_the_projects_own_command_works_from_the_repository_root(runs_dir):
    res = cockpit("spec", "check", "presets/sgd_cosine.toml", cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "# resolved from presets/sgd_cosine.toml" in res.stdout and "note:" not in res.stderr
    assert not (ROOT / "cockpit" / "presets").exists()  # one source: no second copy inside the package


def test_presets_slash_name_elsewhere_is_the_shipped_preset_with_a_one_line_note(tmp_path):
    res = cockpit("spec", "check", "presets/sgd_cosine.toml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"# resolved from {ROOT / 'presets' / 'sgd_cosine.toml'}" in res.stdout
    [note] = [line for line in res.stderr.splitlines() if line.startswith("note")]  # one line, once
    assert note.startswith("note: no presets/sgd_cosine.toml here; using the shipped preset sgd_cosine")


def test_a_users_own_presets_folder_wins_and_is_never_redirected(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "sgd_cosine.toml").write_text('name = "mine"\n')
    res = cockpit("spec", "check", "presets/sgd_cosine.toml", cwd=tmp_path)
    assert res.returncode == 0 and 'name = "mine"' in res.stdout and "note:" not in res.stderr
    res = cockpit("spec", "check", "presets/other.toml", cwd=tmp_path)  # neither theirs nor shipped
    assert res.returncode == 2 and "no preset file or name 'presets/other.toml'" in res.stderr


def test_an_unknown_preset_names_the_closest_ones_and_creates_nothing(tmp_path):
    runs = tmp_path / "runs"
    res = cockpit("--runs-dir", str(runs), "run", "sgd_cosin", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert "\n" not in line and "did you mean sgd_cosine?" in line and "`cockpit presets`" in line
    assert not runs.exists()
    res = cockpit("run", "presets/cpu_cifar1.toml", cwd=tmp_path)
    assert res.returncode == 2 and "did you mean cpu_cifar10?" in res.stderr
    res = cockpit("run", "zzzzzz", cwd=tmp_path)  # nothing close: no guess, still the way to the list
    assert res.returncode == 2 and "did you mean" not in res.stderr and "`cockpit presets`" in res.stderr


def test_sweep_presets_resolve_and_suggest_the_same_way(tmp_path):
    runs = tmp_path / "runs"
    res = cockpit("--runs-dir", str(runs), "sweep", "create", "presets/sweeps/cpu_optimizers.toml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "using the shipped sweep preset cpu_optimizers" in res.stderr
    res = cockpit("--runs-dir", str(runs), "sweep", "create", "cpu_optimizer", cwd=tmp_path)
    assert res.returncode == 2 and "did you mean cpu_optimizers?" in res.stderr
    bad = tmp_path / "s.toml"
    bad.write_text('base = "cpu_cifar1"\nseeds = [0]\n[grid]\n"optim.lr" = [0.1]\n')
    res = cockpit("--runs-dir", str(runs), "sweep", "create", str(bad), cwd=tmp_path)
    assert res.returncode == 2 and f"{bad}:1:" in res.stderr and "did you mean cpu_cifar10?" in res.stderr
