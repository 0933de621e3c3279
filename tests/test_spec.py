"""The run spec: defaults, TOML round trip, overrides, errors with their dotted paths."""

from __future__ import annotations

import json
import tomllib

import pytest

from engine.spec import RunSpec, SpecError, dump_spec, load_spec, parse_spec_text, spec_schema

from .conftest import ROOT
from .faults.test_hostile_spec import OPTIMIZER_SPECS, leaves

PROJECT_PRESETS = ROOT / "presets"


def test_defaults_are_a_quick_cpu_run():
    spec = RunSpec()
    assert spec.data.source == "synthetic"
    assert spec.model.name == "tiny"
    assert spec.optim.name == "sgd"
    assert spec.train.epochs >= 1 and spec.train.batch_size >= 1


def test_quickstart_preset_is_the_default_spec():
    assert load_spec(PROJECT_PRESETS / "quickstart.toml") == RunSpec()


@pytest.mark.parametrize("preset", sorted(PROJECT_PRESETS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_preset_is_valid_round_trips_and_has_a_header(preset):
    text = preset.read_text()
    assert text.startswith("# "), "each preset starts with a comment header saying what it is for"
    spec = load_spec(preset)
    assert spec.name == preset.stem
    assert parse_spec_text(dump_spec(spec)) == spec


def test_round_trip_of_a_spec_with_every_section_changed():
    spec = load_spec(None, [
        "optim.name=adamw", "optim.lr=0.002", "optim.layer_lr.stem=0.1", "augment.resized_crop.enabled=true",
        "augment.erasing.scale=[0.1, 0.2]", "schedule.name=onecycle", "swa.enabled=true", "evaluate.tta=true",
        "monitor.tensorboard=true", "train.amp=bf16", "model.name=resnet18", "model.se=true",
    ])
    again = parse_spec_text(dump_spec(spec, "header"))
    assert again == spec
    assert again.optim.name == "adamw" and again.optim.layer_lr == {"stem": 0.1}
    assert again.augment.erasing.scale == (0.1, 0.2)


def test_overrides_are_typed_like_the_file():
    spec = load_spec(None, ["optim.lr=0.1", "train.epochs=7", "train.compile=true", "data.source=cifar10"])
    assert spec.optim.lr == 0.1 and isinstance(spec.optim.lr, float)
    assert spec.train.epochs == 7 and spec.train.compile is True
    assert spec.data.source == "cifar10"


def test_override_switches_the_optimizer_and_its_defaults():
    spec = load_spec(None, ["optim.name=adamw"])
    assert spec.optim.name == "adamw" and spec.optim.lr == pytest.approx(1e-3)


def errors_of(fn) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        fn()
    return {where.split(" ")[0]: msg for where, msg in info.value.errors}


def test_every_error_is_listed_with_its_dotted_path(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[optim]\nlr = -1\nfoo = 3\n[train]\nbatch_size = 0\nepochs = 0\n')
    errs = errors_of(lambda: load_spec(bad))
    assert set(errs) == {"optim.lr", "optim.foo", "train.batch_size", "train.epochs"}
    assert errs["optim.foo"] == "unknown key"


def test_errors_point_into_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n\n[train]\nepochs = 0\n')
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    assert f"{bad}:4:1" in str(info.value)


def test_invalid_toml_names_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[optim\nlr = 1\n')
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    assert f"{bad}:2:" in str(info.value)


def test_unknown_override_key_suggests_the_right_one():
    errs = errors_of(lambda: load_spec(None, ["optim.lrr=0.1"]))
    assert "optim.lr" in errs["optim.lrr"]


def test_unknown_model_and_optimizer_list_the_valid_names():
    errs = errors_of(lambda: load_spec(None, ["model.name=resnet99"]))
    assert "resnet18" in errs["model.name"] and "tiny" in errs["model.name"]
    errs = errors_of(lambda: load_spec(None, ["optim.name=lion"]))
    assert "adamw" in errs["optim"] and "sgd" in errs["optim"]


def test_missing_preset_is_a_spec_error(tmp_path):
    errs = errors_of(lambda: load_spec(tmp_path / "nope.toml"))
    assert "no such preset file" in next(iter(errs.values()))


def test_cross_field_checks():
    errs = errors_of(lambda: load_spec(None, ["evaluate.calibrate=true"]))
    assert "data.val_size" in next(iter(errs.values()))


def test_schema_is_json_and_carries_descriptions():
    schema = spec_schema()
    json.dumps(schema)
    assert "optim" in schema["properties"]
    train = schema["$defs"]["TrainSpec"]["properties"]
    assert train["epochs"]["description"]


def test_dump_is_valid_toml_with_a_header():
    text = dump_spec(RunSpec(), "line one\nline two")
    assert text.startswith("# line one\n# line two\n")
    assert tomllib.loads(text)["name"] == "quickstart"


# ----------------------------------------------------------------- values the worker cannot use (#14)


def float_leaves() -> list[tuple[list[str], str, str]]:
    """(overrides that select the section, key, a TOML value with a NaN or inf in it) for every float in the spec."""
    out = []
    fields = [([], p, f) for p, f in leaves(RunSpec).items()]
    fields += [([f"optim.name={name}"], p, f) for name, cls in OPTIMIZER_SPECS.items() for p, f in leaves(cls, "optim.").items()]
    for pre, path, info in fields:
        text = str(info.annotation)
        if path == "optim.layer_lr":
            out.append((pre, "optim.layer_lr.stem", "nan"))
        elif info.annotation is float:
            out += [(pre, path, "inf"), (pre, path, "nan"), (pre, path, "-inf")]
        elif "float" in text:  # a pair or a list of floats
            out.append((pre, path, "[0.5, inf]" if "tuple" in text else "[nan]"))
    return out


@pytest.mark.parametrize(("pre", "key", "value"), float_leaves(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_float_must_be_a_finite_number(pre, key, value):
    errs = errors_of(lambda: load_spec(None, [*pre, f"{key}={value}"]))
    assert [where for where in errs if where.startswith(key)], errs
    assert any("must be a finite number" in msg for msg in errs.values()), errs


def test_nan_learning_rate_says_finite_not_a_bound():
    errs = errors_of(lambda: load_spec(None, ["optim.lr=nan"]))
    assert errs == {"optim.lr": "must be a finite number, got nan"}


@pytest.mark.parametrize(("key", "overrides"), [
    ("train.seed", ["train.seed=9223372036854775808"]),
    ("data.synthetic_train", ["data.synthetic_train=1000000000000"]),
    ("optim.betas.0", ["optim.name=adamw", "optim.betas=[1.5, 0.9]"]),
    ("optim.betas.1", ["optim.name=adam", "optim.betas=[0.9, 1.0]"]),
    ("optim.betas.0", ["optim.name=adamw", "optim.betas=[-0.1, 0.9]"]),
    ("optim.layer_lr.stem", ["optim.layer_lr.stem=0"]),
    ("optim.layer_lr.stem", ["optim.layer_lr.stem=1e6"]),
    ("optim.layer_lr", ["optim.layer_lr.=2"]),
    ("train.batch_size", ["train.batch_size=1"]),
    ("train.checkpoint_every", ["train.checkpoint_every=99999999"]),
    ("monitor.every", ["monitor.every=99999999999"]),
    ("augment.resized_crop.ratio", ["augment.resized_crop.ratio=[0, 1]"]),
    ("augment.erasing.ratio", ["augment.erasing.ratio=[-1, 3]"]),
    ("data.root", ['data.root="a\\u0000b"']),
    ("data.root", ['data.root="/tmp/' + "a" * 256 + '/b"']),
    ("schedule.milestones", ["schedule.milestones=[" + ", ".join(["0.5"] * 101) + "]"]),
])
def test_out_of_range_values_are_named_by_their_path(key, overrides):
    assert key in errors_of(lambda: load_spec(None, overrides))


def test_the_largest_seed_is_accepted_and_torch_takes_it():
    import torch

    spec = load_spec(None, ["train.seed=9223372036854775807"])
    torch.manual_seed(spec.train.seed + 10**9)  # the worker reseeds with seed + step


@pytest.mark.parametrize(("overrides", "key", "words"), [
    (["data.val_size=2047"], "data.val_size", "2,046 or less"),
    (["data.source=cifar10", "data.val_size=50000"], "data.val_size", "cifar10"),
    (["data.synthetic_train=1000000", "data.image_size=512"], "data.synthetic_train", "GiB"),
    (["schedule.warmup_epochs=3"], "schedule.warmup_epochs", "train.epochs is 3"),
    (["schedule.name=step", "schedule.warmup_epochs=2", "train.epochs=4"], "schedule.warmup_epochs", "milestone"),
    (["swa.enabled=true", "swa.start=5"], "swa.start", "train.epochs is 3"),
    (["evaluate.tta=true", "evaluate.tta_views=[]"], "evaluate.tta_views", "at least one view"),
    (["evaluate.calibrate=true"], "evaluate.calibrate", "data.val_size"),
])
def test_fields_that_depend_on_each_other_are_checked_together(overrides, key, words):
    errs = errors_of(lambda: load_spec(None, overrides))
    assert words in errs[key], errs


def test_values_that_fit_together_pass():
    load_spec(None, ["data.val_size=2046", "schedule.warmup_epochs=2.9", "swa.enabled=true", "swa.start=3",
                     "evaluate.tta=true", "evaluate.tta_views=[]", "evaluate.tta_random_views=2"])
    load_spec(None, ["data.source=cifar10", "data.val_size=49998", "schedule.name=onecycle", "schedule.warmup_epochs=9"])


def test_several_cross_field_problems_each_point_into_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[data]\nval_size = 3000\n\n[schedule]\nwarmup_epochs = 5\n")
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    wheres = [where for where, _ in info.value.errors]
    assert wheres == [f"data.val_size ({bad}:2:1)", f"schedule.warmup_epochs ({bad}:5:1)"]


# --------------------------------------------------------------------- odd input, clear errors (#14 item 7)


def test_toml_nested_100000_deep_is_a_spec_error(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000)
    with pytest.raises(SpecError, match="nested too deeply"):
        load_spec(deep)
    with pytest.raises(SpecError, match="nested too deeply"):
        parse_spec_text("optim = " + "{a = " * 100_000)


def test_an_override_nested_5000_deep_is_a_spec_error():
    errs = errors_of(lambda: load_spec(None, ["optim.lr=" + "[" * 5000]))
    assert "nested too deeply" in errs["optim.lr"]


def test_over_long_override_keys_and_values_are_refused_briefly():
    with pytest.raises(SpecError) as info:
        load_spec(None, ["a" * 1_000_000 + "=1", "data.root=" + "x" * 1_000_000, "=" * 100_000])
    assert len(str(info.value)) < 1000
    assert "too long" in str(info.value)


def test_an_integer_longer_than_python_converts_is_a_spec_error(tmp_path):
    errs = errors_of(lambda: load_spec(None, ["train.seed=" + "9" * 5000]))
    assert "train.seed" in errs
    big = tmp_path / "big.toml"
    big.write_text("[train]\nseed = " + "9" * 5000 + "\n")
    with pytest.raises(SpecError, match="invalid TOML"):
        load_spec(big)


def test_a_spec_error_is_a_usage_error():
    from engine.contracts import UsageError

    with pytest.raises(UsageError):
        load_spec(None, ["train.epochs=0"])


def test_a_preset_with_thousands_of_problems_lists_thirty_and_counts_the_rest(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('"' + "k" * 100_000 + '" = 1\n' + "".join(f"x{i} = 1\n" for i in range(50_000)))
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    assert len(info.value.errors) == 31 and "49,971 more problems" in info.value.errors[-1][1]
    assert info.value.errors[1][0] == f"x0 ({bad}:2:1)"
    assert len(str(info.value)) < 5000
