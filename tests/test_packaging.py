"""The wheel users install (`pipx install .`, `pip install .`) carries every preset (the project's
presets/ folder, as cockpit/presets/) and the stylesheet.

.ci/wheel_check goes further: it installs the wheel with its dependencies alone into a fresh venv,
imports every module and runs presets by name."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions

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


def _imported_modules() -> set[str]:
    """The top-level modules engine/ and cockpit/ import at run time (`if TYPE_CHECKING:` blocks apart)."""
    names: set[str] = set()
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("cockpit/**/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("engine", "cockpit", "__future__")}


def _dist(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_module_the_code_imports_is_a_dependency_or_an_extra_the_readme_installs():
    """A fresh machine set up by the README's command has what the README's commands import: the
    dependencies, and the extras it installs (`export` for `cockpit export`); any other extra is
    named in the README beside what needs it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_dist(r) for r in project["dependencies"]}
    extras = {name: {_dist(r) for r in reqs} for name, reqs in project["optional-dependencies"].items()}
    dists = packages_distributions()
    readme = (ROOT / "README.md").read_text()
    fresh = readme[readme.index("## On a fresh machine"):readme.index("## The CLI at a glance")]
    assert "python3 -m venv .venv && .venv/bin/pip install -e '.[export]' && .venv/bin/cockpit run\n" in fresh
    for module in sorted(_imported_modules()):
        [dist] = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if dist in core:
            continue
        extra = [name for name, reqs in extras.items() if dist in reqs and name != "test"]
        assert extra, f"{module} ({dist}) is imported but neither a dependency nor in an extra"
        assert dist in extras["test"], f"{dist}: the test extra must hold it, or its tests skip"
        assert extra[0] == "export" or f"`{extra[0]}` (" in fresh, f"the README does not name the {extra[0]} extra"
