"""Run reports: made from the store alone for finished, stopped, crashed and running runs;
self-contained HTML with every section and chart; Rich SVG; Markdown; JSON per the documented schema;
`cockpit compare`."""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine.contracts import parse_result
from engine.spec import load_spec
from engine.store import Run

from .conftest import ROOT

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ------------------------------------------------------------------------------------ fixtures


def make_run(runs_dir: Path, *, state: str = "finished", steps: int = 400, steps_per_epoch: int = 40,
             sets: list[str] | None = None, seed: int = 0, results: bool = True, events: bool = True,
             metrics: bool = True, pid: int | None = None) -> Run:
    """A run with realistic fabricated metrics, events and results (no torch, no worker)."""
    rng = random.Random(seed)
    spec = load_spec(None, ["data.source=cifar10", "model.name=resnet18", "train.epochs=10", *(sets or [])])
    run = Run.create(runs_dir, spec, preset="presets/sgd_cosine.toml")
    t0 = 1_790_000_000.0 + seed * 1000
    total = steps_per_epoch * 10
    meta = dict(state=state, started=t0, total_steps=total, steps_per_epoch=steps_per_epoch, epochs=10,
                device="NVIDIA H100 80GB HBM3", torch_version="2.5.1+cu124")
    if state in ("finished", "stopped", "failed"):
        meta["ended"] = t0 + 1234.5
    if state == "stopped":
        meta["error"] = "stopped by cockpit stop"
    meta["pid"] = pid if pid is not None else os.getpid()
    run.set_meta(**meta)
    if metrics:
        rows = []
        layers = ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
        for s in range(5, steps + 1, 5):
            e = s / steps_per_epoch
            p = s / total
            lr = 0.05 * 0.5 * (1 + math.cos(math.pi * p)) * (0.5 if s > 200 else 1.0)
            tl = 2.3 * math.exp(-3 * p) + 0.15 + rng.gauss(0, 0.03)
            rows += [(s, e, "train_loss", tl), (s, e, "train_acc", min(0.99, 1 - tl / 2.5 + rng.gauss(0, 0.01))),
                     (s, e, "lr", lr), (s, e, "grad_norm", 1.5 * math.exp(-p) + rng.random() * 0.2 + (25 if s == 150 else 0)),
                     (s, e, "grad_norm_max", 2.0 * math.exp(-p) + rng.random() * 0.3 + (40 if s == 150 else 0)),
                     (s, e, "images_per_s", 24000 + rng.gauss(0, 800)), (s, e, "step_time_ms", 21 + rng.gauss(0, 1)),
                     (s, e, "data_time_ms", 1.5 + rng.random()), (s, e, "memory_gb", 3.2)]
            rows += [(s, e, f"lr/{ly}", lr * (0.1 if ly == "stem" else 1.0)) for ly in ("stem", "body")]
            if s % 20 == 0:
                rows += [(s, e, "act/saturation", 0.3 + 0.2 * p), (s, e, "act/dead", 0.01 + 0.05 * p)]
                for ly in layers[:-1]:
                    rows += [(s, e, f"act/{k}/{ly}", v) for k, v in (("mean", 0.4), ("std", 0.6), ("zeros", 0.5),
                                                                       ("dead", 0.02), ("saturation", 0.4))]
                q = 2.3 * math.exp(-3 * p)
                rows += [(s, e, "difficulty/p10", q * 0.1), (s, e, "difficulty/p50", q * 0.5 + 0.05),
                         (s, e, "difficulty/p90", q * 1.5 + 0.2), (s, e, "difficulty/max", q * 3 + 1)]
                hist = [rng.random() * (10 - i) for i in range(10)]
                rows += [(s, e, f"difficulty/hist/{i:02d}", v / sum(hist)) for i, v in enumerate(hist)]
            if s % 50 == 0:
                for ly in layers:
                    rows += [(s, e, f"grad_norm/{ly}", rng.random()), (s, e, f"update_ratio/{ly}", 1e-3 * rng.random())]
            if s % steps_per_epoch == 0:
                rows += [(s, e, "test_loss", 2.0 * math.exp(-2.5 * p) + 0.3), (s, e, "test_acc", 0.93 - 0.8 * math.exp(-4 * p))]
        rows.append((steps, steps / steps_per_epoch, "skipped_steps", 2.0))
        rows.append((steps, steps / steps_per_epoch, "grad_norm", float("inf")))  # a non-finite value must not break JSON
        run.add_metrics(rows)
    if events:
        story = [
            ("started", "training resnet18 on cifar10 (cuda)", "info", 0),
            ("grad_spike", "grad norm 41.2 is 25x its running median 1.6", "warning", 150),
            ("set_lr", "base LR 0.025 (was set live)", "info", 200),
            ("paused", "training paused", "info", 240),
            ("resumed", "training resumed", "info", 240),
            ("checkpoint", "checkpoint written: last.pt", "info", 280),
            ("swa_started", "SWA started at epoch 8 (schedule)", "info", 300),
            ("nonfinite", "1 step(s) with a non-finite loss or gradient skipped before step 350", "error", 350),
        ]
        for kind, message, level, step in story:
            if step <= steps:
                data = {"lr": 0.025, "layer": None, "mult": None} if kind == "set_lr" else {}
                run.add_event(kind, message, level=level, step=step, **data)
        if state == "finished":
            run.add_event("swa_finished", "SWA model: test_acc=0.9350", step=steps)
            run.add_event("finished", "done", step=steps)
        elif state == "stopped":
            run.add_event("stopped", "stopped by cockpit stop", step=steps)
    if results:
        add = run.add_result
        add(parse_result("hardest", {"examples": [{"index": 100 + i, "label": i % 10, "pred": (i * 3) % 10,
                                                   "loss": 6.0 - i * 0.3} for i in range(16)]}), step=steps)
        add(parse_result("swa", {"base_acc": 0.927, "swa_acc": 0.9350, "delta": 0.008, "epochs": 3,
                                 "test_acc": 0.9350, "test_loss": 0.25}), step=steps, checkpoint="swa.pt")

        def bins(gap: float) -> list[dict]:  # the engine's shape: equal-width bins, empty ones with null conf/acc
            return [{"lower": i / 15, "upper": (i + 1) / 15, "conf": None if i < 2 else (i + 0.5) / 15,
                     "acc": None if i < 2 else max(0.0, (i + 0.5) / 15 - gap), "count": 0 if i < 2 else 10 * (i + 1)}
                    for i in range(15)]

        rel_b, rel_a = bins(0.08), bins(0.01)
        add(parse_result("calibrate", {"before": {"nll": 0.31, "ece": 0.041, "acc": 0.927},
                                       "after": {"nll": 0.24, "ece": 0.012, "acc": 0.927}, "temperature": 1.52,
                                       "reliability": {"before": rel_b, "after": rel_a},
                                       "val_nll": {"before": 0.33, "after": 0.25}, "bins": 15, "val_size": 5000,
                                       "test_size": 10000, "checkpoint": "best.pt", "step": steps}), step=steps)
        add(parse_result("tta", {"base_acc": 0.927, "base_loss": 0.31, "tta_acc": 0.9381, "tta_loss": 0.27,
                                 "delta": 0.0111, "ece": 0.02, "combine": "logits", "n_views": 3, "random_views": 0,
                                 "views": {"identity": 0.927, "flip": 0.925, "translate": 0.921}, "seed": 0,
                                 "checkpoint": "best.pt", "step": steps}), step=steps, checkpoint="best.pt")
        add(parse_result("ensemble", {"members": [{"run": f"run-{k}", "acc": 0.92 + k / 100, "nll": 0.3} for k in range(3)],
                                      "vote_acc": 0.943, "mean_prob_acc": 0.9452, "best_member_acc": 0.94,
                                      "gain": 0.0052, "vote_gain": 0.003, "nll": 0.19}), step=steps)
        matrix = [[(900 + rng.randint(0, 80)) if i == j else rng.randint(0, 25) for j in range(10)] for i in range(10)]
        add(parse_result("confusion", {"matrix": matrix, "classes": CIFAR10, "checkpoint": "best.pt",
                                       "per_class_acc": [row[i] / sum(row) for i, row in enumerate(matrix)]}), step=steps)
    return run


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def runs(tmp_path) -> dict[str, Run]:
    d = tmp_path / "runs"
    out = {
        "finished": make_run(d, state="finished", sets=["optim.lr=0.05"]),
        "stopped": make_run(d, state="stopped", steps=300, seed=1, sets=["optim.lr=0.1", "train.batch_size=256"],
                            results=False),
        "crashed": make_run(d, state="running", steps=120, seed=2, pid=dead_pid(), results=False),
        "running": make_run(d, state="running", steps=200, seed=3, results=False),
    }
    return out


# ------------------------------------------------------------------------------------- parsing


class Doc(HTMLParser):
    """Ids, section ids, top-level <svg> ids, and every attribute that could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.sections: list[str] = []
        self.svgs: list[str] = []
        self.refs: list[str] = []
        self.tags: set[str] = set()
        self.depth_svg = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "section" and "id" in a:
            self.sections.append(a["id"])
        if tag == "svg":
            if self.depth_svg == 0:
                self.svgs.append(a.get("id", ""))
            self.depth_svg += 1
        for k in ("src", "href", "xlink:href", "action", "data", "poster"):
            if a.get(k):
                self.refs.append(a[k])

    def handle_endtag(self, tag):
        if tag == "svg":
            self.depth_svg -= 1


def parse_html(text: str) -> Doc:
    d = Doc()
    d.feed(text)
    d.close()
    return d


def svg_chunks(html_text: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html_text, flags=re.S)


def svg_text(svg: str) -> str:
    root = ET.fromstring(svg)
    return " ".join("".join(el.itertext()) for el in root.iter()).replace("\xa0", " ")


def documented_keys() -> dict[str, set[str]]:
    """`group.key` rows from docs/report-schema.md's tables: {group: {keys}} ('' is the top level)."""
    text = (ROOT / "docs" / "report-schema.md").read_text(encoding="utf-8")
    out: dict[str, set[str]] = {}
    for m in re.finditer(r"^\| `([a-z_\[\].]+)` \|", text, flags=re.M):
        path = m.group(1).replace("[]", "")
        group, _, key = path.rpartition(".")
        out.setdefault(group, set()).add(key)
    return out


# ----------------------------------------------------------------------------------- the tests


def test_reports_for_every_state(runs):
    from cockpit.report import CHARTS, SECTIONS, write_report

    for label, run in runs.items():
        paths = write_report(run, "all")
        assert sorted(p.name for p in paths) == ["report.html", "report.json", "report.md", "report.svg"], label
        assert all(p.parent == run.path and p.stat().st_size > 0 for p in paths)
        assert not list(run.path.glob(".report*")), "temp files left behind"
        summary = json.loads((run.path / "report.json").read_text())
        expected = {"finished": "finished", "stopped": "stopped", "crashed": "crashed", "running": "running"}[label]
        assert summary["run"]["state"] == expected
        html_text = (run.path / "report.html").read_text()
        doc = parse_html(html_text)
        assert doc.sections == list(SECTIONS), label
        assert expected in html_text
        md = (run.path / "report.md").read_text()
        for heading in SECTIONS.values():
            assert f"## {heading}" in md, (label, heading)
        figure_svg(run, expected)
        for chart in svg_chunks(html_text):
            ET.fromstring(chart)  # each chart is well-formed XML on its own
        if label == "finished":
            assert set(CHARTS) <= set(doc.svgs), set(CHARTS) - set(doc.svgs)
            for chart in ("reliability before", "reliability after", "per-class accuracy", "confusion matrix",
                          "per-sample loss histogram", "events"):
                assert chart in term_text(run), chart  # the terminal report has each chart's content
        else:  # no finishing passes: those sections carry a note, the curves are still there
            for c in ("chart-loss", "chart-accuracy", "chart-lr", "chart-grad-norm", "chart-saturation",
                      "chart-difficulty", "chart-throughput", "chart-timeline"):
                assert c in doc.svgs, (label, c)
            assert "chart-reliability" not in doc.svgs and "not calibrated" in html_text
            assert "no confusion matrix" in html_text
    assert "worker process disappeared" in (runs["crashed"].path / "report.html").read_text()
    assert runs["crashed"].state() == "running", "reading never writes: the report left the store as it was"


def term_text(run: Run) -> str:
    from rich.console import Console

    from cockpit.report import summarize, terminal_report

    console = Console(width=120, record=True, color_system=None, file=open(os.devnull, "w"))
    console.print(terminal_report(summarize(run), 120))
    return console.export_text()


def figure_svg(run: Run, state: str) -> None:
    """report.svg is a figure of the run's curves (the HTML report's charts, with axes), sized for a
    slide: not a screenshot of the terminal report."""
    root = ET.fromstring((run.path / "report.svg").read_text())
    assert root.tag == "{http://www.w3.org/2000/svg}svg", "a standalone SVG document"
    width, height = float(root.get("width")), float(root.get("height"))
    assert 1000 <= width <= 1400 and height <= 1.2 * width, (width, height)
    charts = {el.get("id"): el for el in root if el.tag.endswith("svg")}
    assert {"fig-loss", "fig-accuracy", "fig-lr", "fig-grad-norm", "fig-throughput"} <= set(charts), set(charts)
    for el in charts.values():  # side by side and inside the figure, never overlapping
        x, y, w, h = (float(el.get(k)) for k in ("x", "y", "width", "height"))
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height
    boxes = sorted((float(el.get("y")), float(el.get("x"))) for el in charts.values())
    assert len(set(boxes)) == len(boxes)
    text = svg_text(ET.tostring(root, encoding="unicode"))
    assert run.run_id in text and state in text and "test accuracy" in text
    assert not re.search("[▁▂▃▄▅▆▇█]", text), "drawn lines, not terminal sparklines"
    polylines = [el for el in charts["fig-loss"].iter() if el.tag.endswith(("polyline", "path"))]
    assert polylines, "the loss curve is drawn"


def test_html_is_self_contained(runs):
    from cockpit.report import render_html, summarize

    html_text = render_html(summarize(runs["finished"]))
    doc = parse_html(html_text)
    assert not doc.refs or all(r.startswith("#") for r in doc.refs), doc.refs
    assert not re.search(r"https?://", html_text), re.findall(r".{40}https?://.{40}", html_text)
    assert not ({"script", "link", "img", "iframe", "object", "embed"} & doc.tags)
    assert "@import" not in html_text and "url(http" not in html_text
    assert re.findall(r"url\(([^)]*)\)", html_text) == [f"#{c}-clip" for c in re.findall(r'<clipPath id="([^"]+)-clip"', html_text)]
    # the charts carry what they plot: titles, legends, axis ticks, event markers
    loss = next(c for c in svg_chunks(html_text) if 'id="chart-loss"' in c)
    t = svg_text(loss)
    assert "train_loss" in t and "test_loss" in t and "step" in t
    assert loss.count('class="marker"') >= 5  # grad spike, set_lr, pause, resume, checkpoint, SWA, nonfinite...
    acc = svg_text(next(c for c in svg_chunks(html_text) if 'id="chart-accuracy"' in c))
    assert "%" in acc
    conf = next(c for c in svg_chunks(html_text) if 'id="chart-confusion"' in c)
    assert conf.count("<rect") >= 100 and "airplane" in conf
    rel = next(c for c in svg_chunks(html_text) if 'id="chart-reliability"' in c)
    assert "before" in svg_text(rel) and "after" in svg_text(rel)


def test_json_follows_the_documented_schema(runs):
    from cockpit.report import SCHEMA, summarize
    from cockpit.report.export import render_json
    from cockpit.report.schema import render_doc

    docs = documented_keys()
    for group, keys in SCHEMA.items():
        assert docs.get(group) == set(keys), (group, docs.get(group, set()) ^ set(keys))
    doc = (ROOT / "docs" / "report-schema.md").read_text(encoding="utf-8")
    assert render_doc(doc) == doc, "docs/report-schema.md drifted from cockpit/report/schema.py: run python -m cockpit.report.write_schema_doc"
    for label, run in runs.items():
        s = json.loads(render_json(summarize(run)))  # strict JSON: no NaN or Infinity
        assert s["schema_version"] == 1
        assert set(s) == set(SCHEMA[""]), label
        assert set(s["run"]) == set(SCHEMA["run"])
        assert set(s["metrics"]) == set(SCHEMA["metrics"])
        assert set(s["results"]) == set(SCHEMA["results"])
        assert set(s["difficulty"]) == set(SCHEMA["difficulty"])
        for row in s["finishing"]:
            assert set(row) == set(SCHEMA["finishing"])
        for e in s["events"]:
            assert set(e) == set(SCHEMA["events"])
        for name, series in s["series"].items():
            assert set(series) == {"step", "value"} and len(series["step"]) == len(series["value"]) <= 500
        assert s["spec"]["model"]["name"] == "resnet18"
        assert s["spec_toml"].startswith("name = ")
    fin = summarize(runs["finished"])
    assert [r["pass"] for r in fin["finishing"]] == ["base", "swa", "calibrated", "tta", "ensemble"]
    tta = next(r for r in fin["finishing"] if r["pass"] == "tta")
    assert tta["delta_acc"] == pytest.approx(0.9381 - 0.927)  # against the pass's own baseline
    assert "best.pt" in tta["model"] and "best.pt" in tta["baseline"]  # which model, against what
    ens = next(r for r in fin["finishing"] if r["pass"] == "ensemble")
    assert ens["delta_acc"] == pytest.approx(0.9452 - 0.94)  # against the best member, and says so
    assert ens["baseline"] == "the best member (run-2)"
    assert fin["metrics"]["best"]["test_acc"]["step"] == 400
    assert fin["metrics"]["final"]["grad_norm"] is None  # the inf became null
    assert fin["run"]["duration_s"] == pytest.approx(1234.5)
    assert {e["kind"] for e in fin["events"] if e["marker"]} >= {"set_lr", "paused", "swa_started", "grad_spike"}
    assert "started" not in {e["kind"] for e in fin["events"] if e["marker"]}


def test_big_runs_are_downsampled_keeping_spikes():
    from cockpit.report.summary import downsample

    pts = [(i, 1.0) for i in range(20000)]
    pts[12345] = (12345, 99.0)
    out = downsample(pts, 500)
    assert len(out) <= 500 and (12345, 99.0) in out and out[0][0] == 0
    assert [p[0] for p in out] == sorted(p[0] for p in out)


def test_empty_run_and_against(tmp_path):
    from cockpit.report import SECTIONS, render_html, summarize, write_report
    from cockpit.report.render.md import render_markdown

    d = tmp_path / "runs"
    empty = make_run(d, state="running", metrics=False, events=False, results=False)
    other = make_run(d, state="finished", sets=["optim.lr=0.2", "train.epochs=30"], seed=5)
    s = summarize(empty, against=other)
    assert s["run"]["step"] == 0 and s["series"] == {} and s["finishing"] == []
    assert {"key": "optim.lr", "this": 0.05, "other": 0.2} in s["against"]["diff"]
    html_text = render_html(s)
    doc = parse_html(html_text)
    assert doc.sections == list(SECTIONS)
    assert "spec-diff" in doc.ids and "optim.lr" in html_text and "train.epochs" in html_text
    assert "no metrics recorded yet" in html_text
    assert "optim.lr" in render_markdown(s)
    out = tmp_path / "elsewhere"
    paths = write_report(empty, "html,json", out=out)
    assert sorted(p.name for p in paths) == ["report.html", "report.json"] and all(p.parent == out for p in paths)
    single = write_report(empty, "md", out=tmp_path / "x" / "r.md")
    assert single == [tmp_path / "x" / "r.md"] and single[0].is_file()
    with pytest.raises(ValueError):
        write_report(empty, "pdf")


def test_compare(runs, tmp_path):
    from cockpit.report.compare import compare_runs
    from cockpit.report.render.compare import render_compare_html, terminal_compare
    from rich.console import Console

    a, b = runs["finished"], runs["stopped"]
    c = compare_runs([a, b])
    keys = {d["key"] for d in c["diff"]}
    assert {"optim.lr", "train.batch_size"} <= keys and "model.name" not in keys
    console = Console(record=True, width=160, file=open(os.devnull, "w"))
    console.print(terminal_compare(c))
    text = console.export_text()
    assert "optim.lr" in text and "train.batch_size" in text and a.run_id in text and b.run_id in text
    html_text = render_compare_html(c)
    doc = parse_html(html_text)
    assert {"compare-spec", "compare-results", "compare-curves"} <= set(doc.sections)
    assert "chart-compare-test_acc" in doc.svgs and "chart-compare-train_loss" in doc.svgs
    assert not re.search(r"https?://", html_text)
    for chart in svg_chunks(html_text):
        ET.fromstring(chart)


def test_cli_commands(runs, tmp_path):
    """`cockpit report` and `cockpit compare` through the real app."""
    from typer.testing import CliRunner

    from cockpit.cli import app

    runner = CliRunner()
    a, b = runs["finished"], runs["stopped"]
    env = {"COLUMNS": "140", "NO_COLOR": "1"}
    r = runner.invoke(app, ["report", str(a.path), "--width", "140"], env=env)
    assert r.exit_code == 0, r.output
    assert "Final and best metrics" in r.output and "Timeline and events" in r.output
    r = runner.invoke(app, ["report", str(a.path), "--format", "all", "--out", str(tmp_path / "o"), "--against", str(b.path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "report.html").is_file() and "optim.lr" in (tmp_path / "o" / "report.html").read_text()
    r = runner.invoke(app, ["report", "no-such-run", "--runs-dir", str(tmp_path / "runs")])
    assert r.exit_code == 2 and "no run" in r.output
    r = runner.invoke(app, ["report", str(a.path), "--format", "pdf"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["compare", str(a.path), str(b.path), "--width", "160"], env=env)
    assert r.exit_code == 0, r.output
    assert "optim.lr" in r.output and "train.batch_size" in r.output
    r = runner.invoke(app, ["compare", str(a.path), str(b.path), "--format", "html", "--out", str(tmp_path / "c.html")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c.html").is_file()
    r = runner.invoke(app, ["compare", str(a.path)])
    assert r.exit_code == 2


def test_report_package_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", "import cockpit.report, cockpit.report.compare, cockpit.report.render.compare, sys; "
                          "print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "False"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs headless chromium")
def test_html_renders_in_headless_chromium(runs, tmp_path):
    """The report renders offline: Chromium's DOM holds every chart and section."""
    from cockpit.report import CHARTS, SECTIONS, write_report

    (path,) = write_report(runs["finished"], "html")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=2000", "--dump-dom", path.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    doc = parse_html(dom)
    assert doc.sections == list(SECTIONS)
    assert set(CHARTS) <= set(doc.svgs)
    png = tmp_path / "shot.png"
    subprocess.run(cmd[:-2] + ["--window-size=1200,2400", f"--screenshot={png}", path.as_uri()],
                   capture_output=True, timeout=120)
    assert png.is_file() and png.stat().st_size > 20_000


@pytest.mark.slow
def test_the_hardest_examples_show_as_inline_thumbnails(tmp_path, runs):
    """A tiny real run stores the hardest examples with thumbnails: the HTML report draws them as
    data-URI PNGs with label, prediction and loss, Markdown lists them; without thumbnails, no images."""
    import base64
    import io

    from PIL import Image

    from cockpit.core.thumbs import decode
    from cockpit.report import render_html, summarize
    from cockpit.report.render.md import render_markdown
    from engine.train import Trainer

    spec = load_spec(None, ["data.synthetic_train=128", "data.synthetic_test=64", "train.batch_size=64",
                            "train.epochs=1", "train.threads=1"])
    run = Run.create(tmp_path / "runs", spec, preset="test")
    assert Trainer(spec, run, log=lambda _m: None).fit() == "finished"
    s = summarize(run)
    hardest = s["results"]["hardest"]["examples"]
    html_text = render_html(s)
    section = re.search(r'<section class="card" id="hardest">.*?</section>', html_text, flags=re.S).group(0)
    srcs = re.findall(r'<img src="([^"]+)"', section)
    assert len(srcs) == 8, "the first 8 hardest examples carry a thumbnail"
    first = hardest[0]
    png = Image.open(io.BytesIO(base64.b64decode(srcs[0].removeprefix("data:image/png;base64,"))))
    assert png.size == (16, 16) and png.mode == "RGB"
    assert [list(png.getpixel((x, 0))) for x in range(16)] == [list(p) for p in decode(first["thumb"])[0]]
    label = s["results"]["hardest"]["classes"][first["label"]]
    assert f"test[{first['index']}]" in section and f"label {label}" in section
    assert f"loss {first['loss']:.3f}" in section and "pred " in section
    md = render_markdown(s)
    assert "## Hardest examples" in md and "thumbnails in the HTML report" in md and "| index | label |" in md
    assert "data:image" not in md
    plain = render_html(summarize(runs["finished"]))  # stored without thumbnails: the table alone
    assert "<img" not in plain and 'id="hardest"' in plain


def test_the_markdown_sparklines_use_the_live_views_honest_scale(tmp_path):
    """A 0.5-point wobble in test accuracy is a small step in report.md, not a full-height swing (the
    scale the live view uses); a real fall still spans the height; min and max stand beside it."""
    from cockpit.report import summarize
    from cockpit.report.render.md import render_markdown
    from engine.spec import RunSpec

    run = Run.create(tmp_path, RunSpec(name="wobble"))
    run.set_meta(state="finished", total_steps=40, steps_per_epoch=4, epochs=10)
    run.add_metrics([(s, s / 4, "test_acc", 0.800 + (0.005 if s % 8 else 0.0)) for s in range(4, 41, 4)]
                    + [(s, s / 4, "train_loss", 2.3 - 0.05 * s) for s in range(1, 41)])
    md = render_markdown(summarize(run))
    curves = [line for line in md.splitlines() if line.startswith("| ") and "`" in line]  # the curves table
    [acc] = [line for line in curves if line.startswith("| test accuracy ")]
    [loss] = [line for line in curves if line.startswith("| train loss ")]
    bars = set(acc.split("`")[1]) - {" "}
    assert bars and not bars & set("▁▂▇█"), f"0.5 points drawn as a small step: {acc}"
    assert "80.00%" in acc and "80.50%" in acc, "the min and max beside it"
    assert "█" in loss and "▁" in loss, f"a real fall spans the height: {loss}"
