"""Finding presets: a path, or a name looked up in ./presets (the user's) and then in the shipped ones.

The shipped presets are the project's top-level presets/ folder; the wheel carries it inside the package
as cockpit/presets/ (package data, mapped in setup.py), so a `pipx install` has them all. A source tree
(an editable install, PYTHONPATH) has no cockpit/presets/ and reads the folder beside the package."""

from __future__ import annotations

import difflib
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def _shipped_presets() -> Path:
    inside = _PACKAGE / "presets"  # an installed wheel
    return inside if inside.is_dir() else _PACKAGE.parent / "presets"  # the source tree


PROJECT_PRESETS = _shipped_presets()
DEFAULT_PRESET = "quickstart"


def user_presets_dir() -> Path:
    """./presets: where the editor saves presets (relative where the working directory has been deleted,
    so that a save says why it fails instead of the TUI failing to open)."""
    try:
        return Path.cwd() / "presets"
    except OSError:
        return Path("presets")


def preset_dirs() -> list[Path]:
    seen, out = set(), []
    for d in (user_presets_dir(), PROJECT_PRESETS):
        if d.is_dir() and (key := d.resolve()) not in seen:
            seen.add(key)
            out.append(d)
    return out


def _named(ref: str, sub: str = "") -> Path | None:
    """The preset (or sweep preset, sub="sweeps") called `ref` in ./presets, then the shipped ones."""
    for d in preset_dirs():
        cand = d / sub / f"{ref}.toml"
        if cand.is_file():
            return cand
    return None


def _as_name(p: Path, sub: str) -> str | None:
    """`presets/NAME.toml` (`presets/sweeps/NAME.toml` for sweeps) as NAME: the project's own layout,
    typed where there is no presets/ folder, names a shipped preset."""
    folder = Path("presets") / sub if sub else Path("presets")
    return p.stem if p.parent == folder and p.suffix in ("", ".toml") else None


def locate(ref: str, sub: str = "") -> tuple[Path, str]:
    """(the file, a one-line note or "") for a path or a bare name (`sgd_cosine`); the path itself
    (which does not exist) when nothing matches. The note says when a missing `presets/NAME.toml`
    was read as the shipped preset NAME."""
    p = Path(ref)
    try:
        if p.exists():
            return p, ""
        if (name := _as_name(p, sub)) and (found := _named(name, sub)):
            return found, f"note: no {ref} here; using the shipped {'sweep ' if sub else ''}preset {name} ({found})"
        if p.suffix == ".toml" or "/" in ref:
            return p, ""
        return _named(ref, sub) or p, ""
    except OSError:  # a name too long for the filesystem: reading it says so in one line
        return p, ""


def find_preset(ref: str) -> Path:
    """The preset file for a path or a bare name (`sgd_cosine`); the path itself if nothing matches."""
    return locate(ref)[0]


def missing_preset(ref: str, sub: str = "") -> str:
    """Why `ref` names no preset, with the closest names: `no preset 'sgd_cosin' (did you mean sgd_cosine?)`."""
    names = [p.stem for p in (list_sweep_files() if sub else list_presets())]
    typed = Path(ref).stem if Path(ref).suffix == ".toml" or "/" in ref else ref
    close = difflib.get_close_matches(typed, names, n=3, cutoff=0.6)
    kind = "sweep preset" if sub else "preset"
    hint = f": did you mean {close[0]}?" if close else ""
    also = f" (also close: {', '.join(close[1:])})" if close[1:] else ""
    return f"no {kind} file or name {ref!r}{hint}{also}; `cockpit presets` lists them all"


def list_presets() -> list[Path]:
    seen: dict[str, Path] = {}
    for d in preset_dirs():
        for f in sorted(d.glob("*.toml")):
            seen.setdefault(f.stem, f)
    return sorted(seen.values(), key=lambda f: f.stem)


def list_sweep_files() -> list[Path]:
    """Every sweep preset (./presets/sweeps first, then the shipped ones), one per name."""
    seen: dict[str, Path] = {}
    for d in preset_dirs():
        for f in sorted((d / "sweeps").glob("*.toml")):
            seen.setdefault(f.stem, f)
    return sorted(seen.values(), key=lambda f: f.stem)
