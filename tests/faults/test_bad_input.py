"""Bad input through the CLI and the spec: only the documented error comes out, never a traceback."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cockpit.cli import app
from engine.spec import KNOWN_KEYS, SpecError, load_spec, parse_spec_text

from ..conftest import cockpit

runner = CliRunner()

keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(string.ascii_lowercase + "._", min_size=1, max_size=20))
values = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "[]", "[1, 2]", "{}", "''", "sgd", "adamw", "cuda", "nan", "-inf", '"x"']),
    st.text(max_size=12),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(keys, values), max_size=4))
def test_any_override_gives_a_spec_or_a_spec_error(pairs):
    try:
        load_spec(None, [f"{k}={v}" for k, v in pairs])
    except SpecError as exc:
        assert exc.errors and all(where and msg for where, msg in exc.errors)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_toml_text_gives_a_spec_or_a_spec_error(text):
    try:
        parse_spec_text(text, "preset.toml")
    except SpecError as exc:
        assert exc.errors


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(keys, values), min_size=1, max_size=3))
def test_the_cli_answers_bad_sets_with_exit_2_and_a_message(pairs):
    args = ["spec", "check"]
    for k, v in pairs:
        args += ["--set", f"{k}={v}"]
    res = runner.invoke(app, args)
    assert res.exit_code in (0, 2), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if res.exit_code == 2:
        assert "error" in res.output.lower() or "usage" in res.output.lower()


def test_a_preset_nested_100000_deep_exits_2_with_one_message(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000)
    runs = tmp_path / "runs"
    for command in (["spec", "check"], ["run"]):
        res = cockpit(*command, str(deep), env={"COCKPIT_RUNS": str(runs)})
        out = res.stdout + res.stderr
        assert res.returncode == 2, out
        assert "nested too deeply" in out and "Traceback" not in out
    assert not runs.exists() or not any(runs.iterdir())


def test_over_long_set_keys_and_values_exit_2_in_a_few_lines():
    res = cockpit("spec", "check", "--set", "k" * 100_000 + "=1", "--set", "data.root=" + "x" * 100_000)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out[:2000]
    assert out.count("too long") == 2 and len(out) < 2000, out[:2000]
