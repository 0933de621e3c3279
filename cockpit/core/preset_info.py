"""What each preset is for: the comment header every preset file starts with, as the preset picker,
`cockpit presets` and shell completion show it. Sweep presets live in a `sweeps/` folder beside them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .presets import list_presets, list_sweep_files


@dataclass(frozen=True)
class PresetInfo:
    name: str
    kind: str  # "run" or "sweep"
    path: Path
    description: str  # the header, without its "name:" lead

    @property
    def summary(self) -> str:
        """The first sentence of the description (one line in a list)."""
        head, sep, _ = self.description.partition(". ")
        return head + "." if sep else head


def header(path: Path) -> str:
    """The leading `#` comment lines of a preset file as one paragraph ("" when there are none)."""
    lines = []
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if not line.startswith("#"):
                    break
                lines.append(line[1:].strip())
    except OSError:
        return ""
    text = " ".join(x for x in lines if x)
    lead = f"{path.stem}:"
    return text[len(lead):].strip() if text.startswith(lead) else text


def preset_infos(sweeps: bool = True) -> list[PresetInfo]:
    """Every run preset (then every sweep preset) with its description."""
    infos = [PresetInfo(p.stem, "run", p, header(p)) for p in list_presets()]
    if sweeps:
        infos += [PresetInfo(p.stem, "sweep", p, header(p)) for p in list_sweep_files()]
    return infos
