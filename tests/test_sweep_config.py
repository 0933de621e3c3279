"""Sweep files are checked like spec files: every problem at file:line:col, exit 2, nothing created."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cockpit.core.presets import find_preset
from engine.contracts import UsageError
from engine.sweep.config import SweepError, configs, load_sweep, trial_name
from engine.sweep.locate import locate

from .conftest import ROOT, cockpit
from .sweep_util import write_sweep


def _errors(tmp_path, text: str) -> str:
    p = tmp_path / "s.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(SweepError) as info:
        load_sweep(p, find_preset)
    assert isinstance(info.value, UsageError)
    return str(info.value)


def test_variants_and_grid_expand_to_configurations(tmp_path):
    sweep, presets = load_sweep(write_sweep(tmp_path, "v", {"a": 0.1, "b": 0.2}, [0, 1]), find_preset)
    assert [c.label for c in configs(sweep)] == ["a", "b"] and sweep.kind == "variant" and not sweep.pruning
    assert configs(sweep)[1].overrides == ("optim.lr=0.2",) and "quickstart" in presets
    p = tmp_path / "g.toml"
    p.write_text('seeds = [3]\nset = { "data.val_size" = 100 }\n[grid]\n"optim.lr" = [0.1, 0.2]\n'
                 '"train.epochs" = [1, 2, 3]\n', encoding="utf-8")
    grid, _ = load_sweep(p, find_preset)
    assert grid.name == "g" and grid.pruning and len(configs(grid)) == 6
    assert configs(grid)[0].params == {"optim.lr": 0.1, "train.epochs": 1}
    assert trial_name("g", "lr=0.1 epochs=1", 3) == "g.lr_0_1_epochs_1.s3"


def test_an_unknown_key_is_reported_at_its_line_and_column(tmp_path):
    msg = _errors(tmp_path, 'seeds = [0]\n\n[[variant]]\nname = "a"\n\n[[variant]]\nname = "b"\n  bogus = 3\n')
    assert "s.toml:8:3: variant.1.bogus: unknown key" in msg


def test_a_bad_spec_value_points_at_the_override_in_the_sweep_file(tmp_path):
    text = ('seeds = [0]\nset = { "train.threads" = 1 }\n\n[[variant]]\nname = "a"\nset = { "train.epochs" = 2, '
            '"optim.lr" = -1 }\n\n[[variant]]\nname = "b"\n[variant.set]\n"optim.lr" = 0.1\n"train.epochs" = 0\n')
    msg = _errors(tmp_path, text)
    assert "s.toml:6:29: a: optim.lr:" in msg and "greater than 0" in msg
    assert "s.toml:12:1: b: train.epochs:" in msg


def test_an_unknown_spec_key_in_the_shared_set_is_located(tmp_path):
    msg = _errors(tmp_path, 'seeds = [0]\nset = { "train.epoks" = 1 }\n[[variant]]\nname = "a"\n')
    assert "s.toml:2:9:" in msg and "train.epoks" in msg and "did you mean train.epochs" in msg


@pytest.mark.parametrize("text, expected", [
    ('seeds = [0]\nname = \n', "s.toml:2:8: invalid TOML"),
    ('seeds = [0]\n', "give exactly one of [[variant]], [grid] or [search]"),
    ('seeds = [0, 0]\n[[variant]]\nname = "a"\n', "s.toml:1:1: seeds: must be distinct"),
    ('[[variant]]\nname = "a"\n[[ensemble]]\nname = "e"\nmembers = ["a", "zz"]\n', "members zz are not variants"),
    ('[search]\ntrials = 2\n[search.space."optim.lr"]\nlow = 1\nhigh = 0.1\n', "s.toml:3:1: search.space.optim.lr: low"),
    ('base = "nope_preset"\n[[variant]]\nname = "a"\n', "s.toml:1:1: preset 'nope_preset'"),
    ('[grid]\n"optim.lr" = []\n', "grid: every key needs at least one value"),
])
def test_bad_sweep_files_are_usage_errors_with_a_place(tmp_path, text, expected):
    assert expected in _errors(tmp_path, text)


def test_a_search_space_corner_that_cannot_run_is_refused(tmp_path):
    msg = _errors(tmp_path, '[search]\ntrials = 2\n[search.space."train.epochs"]\ntype = "int"\nlow = 0\nhigh = 3\n')
    assert "s.toml:3:1:" in msg and "train.epochs" in msg


def test_locate_handles_array_tables_and_quoted_keys():
    text = '[[variant]]\nname = "a"\n[[variant]]\nname = "b"\nset = { "optim.lr" = 1, x = 2 }\n'
    assert locate(text, ("variant", 1, "set", "optim.lr")) == "5:9"
    assert locate(text, ("variant", 1, "set", "x")) == "5:25"
    assert locate(text, ("variant", 0, "name")) == "2:1"


def test_cli_exits_2_with_file_line_col_and_creates_nothing(runs_dir, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('seeds = [0]\n[[variant]]\nname = "a"\nset = { "optim.lr" = "fast" }\n', encoding="utf-8")
    r = cockpit("sweep", str(bad))
    assert r.returncode == 2, r.stderr
    assert f"{bad}:4:9: a: optim.lr:" in r.stderr and "Traceback" not in r.stderr
    assert not runs_dir.exists()
    r = cockpit("sweep", "status", "nope")
    assert r.returncode == 2 and "no sweep 'nope'" in r.stderr
    bad.write_text("seeds = [0]\n", encoding="utf-8")
    r = cockpit("sweep", str(bad))  # the message names the tables as written (not eaten as markup)
    assert r.returncode == 2 and "give exactly one of [[variant]], [grid] or [search]" in r.stderr, r.stderr


def test_the_views_of_a_sweep_import_no_optuna_numpy_or_torch():
    code = ("import sys, cockpit.core.sweeps, cockpit.report.sweep, cockpit.cli.sweep, engine.sweep.table, "
            "engine.sweep.runner, engine.sweep.config\n"
            "print(sorted(m for m in ('optuna', 'numpy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_the_shipped_sweeps_validate_and_name_the_guides_figures():
    from cockpit.core.presets import PROJECT_PRESETS

    files = sorted((PROJECT_PRESETS / "sweeps").glob("*.toml"))
    assert {f.stem for f in files} >= {"guide_optimizers", "guide_ensembles", "cpu_optimizers"}
    for f in files:
        sweep, _ = load_sweep(f, find_preset)
        assert sweep.name == f.stem and not sweep.pruning  # guide tables run every trial to its end
    opt, _ = load_sweep(PROJECT_PRESETS / "sweeps" / "guide_optimizers.toml", find_preset)
    assert {v.name: v.guide for v in opt.variant} == {"sgd": 0.942, "sgd_swa": 0.958, "adamw": 0.935, "sgd_cosine": 0.963}
    assert opt.seeds == [0, 1, 2]
    ens, _ = load_sweep(PROJECT_PRESETS / "sweeps" / "guide_ensembles.toml", find_preset)
    assert [e.guide_gain for e in ens.ensemble] == [0.012, 0.015, 0.018]


def test_unset_drops_a_preset_key_before_the_overrides(tmp_path):
    from engine.sweep.config import trial_spec

    p = tmp_path / "u.toml"
    p.write_text('base = "sgd"\n[[variant]]\nname = "adamw"\nunset = ["optim.momentum"]\n'
                 'set = { "optim.name" = "adamw", "optim.lr" = 0.001 }\n', encoding="utf-8")
    sweep, presets = load_sweep(p, find_preset)
    spec = trial_spec(presets["sgd"], "sgd", sweep, configs(sweep)[0], 7)
    assert spec.optim.name == "adamw" and spec.train.seed == 7 and spec.name == "u.adamw.s7"
    p.write_text('base = "sgd"\n[[variant]]\nname = "adamw"\nset = { "optim.name" = "adamw" }\n', encoding="utf-8")
    assert "optim.momentum: unknown key" in _errors(tmp_path, p.read_text())


SEARCH = '[search]\ntrials = 2\n[search.space."optim.lr"]\nlow = 0.01\nhigh = 0.5\n'


def test_a_search_or_pruning_without_a_validation_split_is_refused(runs_dir, tmp_path):
    # Optuna would choose (sample, prune) on test accuracy: the file, the field, the fix
    msg = _errors(tmp_path, SEARCH)
    assert "s.toml:1:1: data.val_size: is 0 in preset 'quickstart'" in msg and "sampler" in msg
    assert 'e.g. set = { "data.val_size" = 5000 }' in msg
    grid = 'set = { "data.val_size" = 0 }\n[grid]\n"optim.lr" = [0.1]\n'
    msg = _errors(tmp_path, grid)  # pruned by default: at the key that turned the split off
    assert "s.toml:1:9: lr=0.1: data.val_size: is 0" in msg and 'pruner = "none"' in msg
    p = tmp_path / "s.toml"
    for ok in ('pruner = "none"\n' + grid, 'set = { "data.val_size" = 64 }\n' + SEARCH):  # nothing to peek with
        p.write_text(ok, encoding="utf-8")
        load_sweep(p, find_preset)
    p.write_text(SEARCH, encoding="utf-8")
    for command in (("create",), ()):
        r = cockpit("sweep", *command, str(p))
        assert r.returncode == 2 and f"{p}:1:1: data.val_size: is 0" in r.stderr, r.stderr
    assert not runs_dir.exists()
