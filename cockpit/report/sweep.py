"""The sweep report: the results table (as the guide shows it: mean ± std over seeds, the guide's
figure beside it), the ensembles and their gains, test-accuracy curves per configuration with a
band of ± one std over seeds, and Optuna's parameter importances for a search. HTML, Markdown and
JSON from `engine.sweep.table` (the trials' run stores) alone; the CLI and the TUI use `cells`."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from cockpit.core.formats import fmt_duration, fmt_pct
from engine.atomic_write import write_text_atomic
from engine.sweep.table import ConfigRow, EnsembleRow, SweepTable

from .render.md_kit import esc, md_table

SWEEP_FORMATS = ("html", "md", "json")
HEADERS = ["config", "test acc ± sample std", "guide", "best seed", "epochs to target", "time to target",
           "images/s", "trials"]
ENSEMBLE_HEADERS = ["ensemble", "members", "over", "mean prob", "gain, pts", "torch.mode vote", "gain, pts",
                    "guide gain"]
STD_NOTE = ("± is the sample standard deviation (n − 1) over a configuration's finished seeds, each (configuration, "
            "seed) counted once; test accuracy of the final model (the SWA model where a run averaged weights)")
ENSEMBLE_NOTE = ("Ensembles of the same final models. Mean prob: the class with the highest mean probability. "
                 "torch.mode vote: the guide's rule, torch.mode over the members' top-1 classes (a tie, as every "
                 "disagreement of two members is, goes to the lowest class index); the guide's claimed gains are "
                 "of this vote, so they sit beside its gain. Gains are in points over the best member; ± is the "
                 "sample std over the evaluations.")


def mean_std(mean: float | None, std: float | None, one: str = " (1 seed)") -> str:
    """`88.00 ± 7.21%`, or the mean alone with `one` after it where there is no std (one value)."""
    if mean is None:
        return "–"
    return f"{100 * mean:.2f} ± {100 * std:.2f}%" if std is not None else f"{100 * mean:.2f}%{one}"


def states(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def config_cells(r: ConfigRow) -> list[str]:
    reached = f" ({r.reached}/{r.n})" if r.n else ""
    return [r.config, mean_std(r.mean, r.std), fmt_pct(r.guide, 1) if r.guide is not None else "",
            f"s{r.best_seed} {fmt_pct(r.best_acc)}" if r.best_seed is not None else "–",
            (f"{r.epochs_to_target:.1f}" if r.epochs_to_target is not None else "–") + reached,
            fmt_duration(r.time_to_target), f"{r.images_per_s:,.0f}" if r.images_per_s is not None else "–",
            states(r.states)]


def cells(table: SweepTable) -> tuple[list[str], list[list[str]]]:
    """The results table as text cells (headers, rows), the same in every view."""
    return HEADERS, [config_cells(r) for r in table.configs]


def evaluated_on(e: EnsembleRow) -> str:
    """What one ensemble row averages: the members' runs of each seed, or every seed's runs at once."""
    if e.across_seeds:
        return f"all {e.size} seeds at once" if e.n else "–"
    return f"each of {e.n} seeds" if e.n != 1 else "1 seed"


def ensemble_cells(table: SweepTable) -> list[list[str]]:
    def signed(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:+.2f}"
    return [[e.name, " + ".join(e.members), evaluated_on(e), mean_std(e.mean, e.std, ""), signed(e.gain),
             mean_std(e.mode_vote, e.mode_vote_std, ""), signed(e.mode_vote_gain),
             signed(e.guide_gain) if e.guide_gain is not None else ""] for e in table.ensembles]


def title(table: SweepTable) -> str:
    return f"sweep {table.name} ({table.kind}, target {fmt_pct(table.target, 1)}): {states(table.states) or 'no trials yet'}"


def band_series(table: SweepTable) -> list[dict[str, Any]]:
    """Per configuration: epochs, mean and std of test accuracy over its seeds at each epoch."""
    out = []
    for r in table.configs:
        by_epoch: dict[float, list[float]] = {}
        for t in table.trials:
            if t.config == r.config:
                for epoch, acc in t.curve:
                    by_epoch.setdefault(epoch, []).append(acc)
        xs = sorted(by_epoch)
        means = [statistics.fmean(by_epoch[x]) for x in xs]
        stds = [statistics.stdev(by_epoch[x]) if len(by_epoch[x]) > 1 else 0.0 for x in xs]
        out.append({"config": r.config, "epoch": xs, "mean": means, "std": stds})
    return out


def summary(table: SweepTable, importance: dict[str, float] | None = None) -> dict[str, Any]:
    return {"kind": "sweep", **table.to_dict(), "curves": band_series(table), "importance": importance or {},
            "generated": time.strftime("%Y-%m-%d %H:%M:%S")}


def render_sweep_json(table: SweepTable, importance: dict[str, float] | None = None) -> str:
    return json.dumps(summary(table, importance), indent=2, ensure_ascii=False, default=str) + "\n"


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return md_table(headers, rows).splitlines()  # every cell escaped: names come from the sweep file


def render_sweep_md(table: SweepTable, importance: dict[str, float] | None = None) -> str:
    headers, rows = cells(table)
    out = [f"# Sweep {esc(table.name)}", "", esc(title(table)), "", *_md_table(headers, rows), "", esc(STD_NOTE), ""]
    if table.ensembles:
        out += ["## Ensembles", "", *_md_table(ENSEMBLE_HEADERS, ensemble_cells(table)), "", esc(ENSEMBLE_NOTE), ""]
    if importance:
        out += ["## Parameter importance (Optuna)", "", *_md_table(["parameter", "importance"],
                [[k, f"{v:.3f}"] for k, v in importance.items()]), ""]
    out += ["## Trials", "", *_md_table(["run", "configuration", "seed", "state", "test acc"],
            [[t.run_id, t.config, str(t.seed), t.state, fmt_pct(t.acc)] for t in table.trials]), ""]
    return "\n".join(out)


def _curves_svg(table: SweepTable) -> str:
    from .render.line_chart import line_chart
    from .render.svg import PALETTE

    series = []
    for i, c in enumerate(band_series(table)):
        color = PALETTE[i % len(PALETTE)]
        lo = [m - s for m, s in zip(c["mean"], c["std"])]
        hi = [m + s for m, s in zip(c["mean"], c["std"])]
        series.append({"name": c["config"], "x": c["epoch"], "y": c["mean"], "color": color})
        if any(c["std"]):  # the band's two edges as one dashed series, a gap (None) between them
            xs = c["epoch"]
            series.append({"name": f"{c['config']} ± 1 std", "x": [*xs, xs[-1], *xs], "y": [*lo, None, *hi],
                           "color": color, "dash": "3 3", "width": 1})
    if not series:
        return ""
    return line_chart("sweep-curves", "test accuracy per configuration (mean, ± one std over seeds)", series,
                      x_label="epoch", y_fmt="pct", width=760, height=360)


def render_sweep_html(table: SweepTable, importance: dict[str, float] | None = None) -> str:
    from .render.html_kit import figure, note, page, section
    from .render.html_kit import table as html_table

    headers, rows = cells(table)
    body = [f"<h1>Sweep {table.name}</h1>", note(title(table)),
            section("results", "Results", html_table(headers, rows, num=(1, 2, 4, 6)) + note(STD_NOTE))]
    if table.ensembles:
        body.append(section("ensembles", "Ensembles", html_table(ENSEMBLE_HEADERS, ensemble_cells(table),
                                                                 num=(3, 4, 5, 6, 7)) + note(ENSEMBLE_NOTE)))
    chart = _curves_svg(table)
    if chart:
        body.append(section("curves", "Curves", figure(chart)))
    if importance:
        from .render.svg import hbar_chart

        bars = hbar_chart("sweep-importance", "parameter importance (Optuna, PED-ANOVA)", list(importance),
                          list(importance.values()), fmt=lambda v: f"{v:.3f}")
        body.append(section("importance", "Parameter importance", figure(bars) + html_table(
            ["parameter", "importance"], [[k, f"{v:.3f}"] for k, v in importance.items()], num=(1,))))
    trial_rows = [[t.run_id, t.config, t.seed, t.state, fmt_pct(t.acc)] for t in table.trials]
    body.append(section("trials", "Trials", html_table(["run", "configuration", "seed", "state", "test acc"], trial_rows)))
    return page(f"sweep {table.name}", "\n".join(body), f"generated {time.strftime('%Y-%m-%d %H:%M:%S')}")


RENDER = {"html": render_sweep_html, "md": render_sweep_md, "json": render_sweep_json}


def write_sweep_report(table: SweepTable, folder: Path, formats: list[str],
                       importance: dict[str, float] | None = None) -> list[Path]:
    """report.<ext> for each format in `folder` (runs/sweeps/<name>/ by default), written atomically."""
    out = []
    for fmt in formats:
        if fmt not in RENDER:
            raise ValueError(f"unknown sweep report format {fmt!r}; choose from {', '.join(SWEEP_FORMATS)} or all")
        out.append(write_text_atomic(Path(folder) / f"report.{fmt}", RENDER[fmt](table, importance)))
    return out
