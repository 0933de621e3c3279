"""Finding presets: a path, or a name looked up in ./presets (the user's) and then in the presets
shipped inside the package (cockpit/presets/, package data: a wheel or `pipx install` has them all)."""

from __future__ import annotations

from pathlib import Path

PROJECT_PRESETS = Path(__file__).resolve().parents[1] / "presets"  # cockpit/presets/, shipped in the wheel
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


def find_preset(ref: str) -> Path:
    """The preset file for a path or a bare name (`sgd_cosine`); the path itself if nothing matches."""
    p = Path(ref)
    try:
        if p.exists() or p.suffix == ".toml" or "/" in ref:
            return p
        for d in preset_dirs():
            cand = d / f"{ref}.toml"
            if cand.is_file():
                return cand
    except OSError:  # a name too long for the filesystem: reading it says so in one line
        pass
    return p


def list_presets() -> list[Path]:
    seen: dict[str, Path] = {}
    for d in preset_dirs():
        for f in sorted(d.glob("*.toml")):
            seen.setdefault(f.stem, f)
    return sorted(seen.values(), key=lambda f: f.stem)
