"""The run spec: defaults, TOML round trip, overrides, errors with their dotted paths."""

from __future__ import annotations

import json
import tomllib

import pytest

from cockpit.presets import PROJECT_PRESETS
from engine.spec import RunSpec, SpecError, dump_spec, load_spec, parse_spec_text, spec_schema


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
