"""The Markdown report escapes what a run carries, as the HTML report does: a tag in a data path, an error or
a set-lr layer name, a link or a backtick in a class name, never becomes live HTML or Markdown."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from cockpit.report.render.md import render_markdown
from cockpit.report.render.md_kit import code, esc, md_table
from cockpit.report.summary import summarize
from engine.store import Run

from .test_report import make_run

TAG = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
LINK = "[click](javascript:alert(3))"


def _html(md: str) -> str:
    """What a Markdown viewer that allows inline HTML (most do, GitHub sanitizes) makes of it."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(md)


def _hostile_run(runs_dir) -> Run:
    root = f"/data/{TAG}/cifar"
    run = make_run(runs_dir, state="failed", sets=[f"data.root={root}"])
    run.set_meta(error=f"data folder {root} not found\n> {IMG} `code` **bold** | pipe")
    run.add_event("set_lr", f"layer {IMG} LR x2 {LINK}", level="info", step=210, lr=0.1, layer=IMG, mult=2.0)
    run.add_event("error", f"cannot read {root}/train/a_b_c.png ~~struck~~", level="error", step=220)
    return run


def test_run_text_in_report_md_is_shown_as_text_never_as_html_or_markdown(runs_dir):
    run = _hostile_run(runs_dir)
    md = render_markdown(summarize(Run(run.path, readonly=True)))
    outside_code = md.split("```toml")[0] + md.split("```toml")[1].split("```", 1)[1]
    assert "<script" not in outside_code
    assert "<img" not in outside_code
    assert "[click](javascript" not in outside_code
    html = _html(md)
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert "<del>" not in html and "<strong>bold</strong>" not in html
    # the characters are all still there for a reader, as escaped text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert "[click](javascript:alert(3))" in html and "~~struck~~" in html and "a_b_c.png" in html
    # the error stays on its quote line: its newline did not end the quote and start live Markdown
    quote = next(line for line in md.splitlines() if line.startswith("> **failed:**"))
    assert "not found" in quote and "pipe" in quote
    # the spec block holds the path literally (a code block is never read as HTML)
    assert f'root = "/data/{TAG}/cifar"' in md and f"root = &quot;/data/&lt;script&gt;" in html


@pytest.mark.parametrize("text", [TAG, IMG, LINK, "a | b", "`tick` and ``two``", "*x* _y_ \\z", "line\nbreak & amp"])
def test_esc_and_code_round_trip_to_the_same_characters(text):
    flat = text.replace("\n", " ")
    shown = _html(md_table(["h"], [[text], [code(text)]]))
    cells = [c.split("</td>")[0] for c in shown.split("<td>")[1:]]
    assert len(cells) == 2
    import html as html_lib

    assert html_lib.unescape(cells[0]) == flat
    assert html_lib.unescape(cells[1]) == f"<code>{flat}</code>" or \
        html_lib.unescape(cells[1].removeprefix("<code>").removesuffix("</code>")) == flat
    assert esc(esc(text)) == esc(text)  # escaped once, not twice
