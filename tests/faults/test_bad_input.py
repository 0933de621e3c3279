"""Bad input through the CLI and the spec: only the documented error comes out, never a traceback."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cockpit.cli import app
from engine.spec import KNOWN_KEYS, SpecError, load_spec, parse_spec_text

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
