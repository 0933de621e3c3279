"""The headless live view and the end-of-run table of `cockpit run` / `attach`, drawn from a real
run store at 80 columns."""

from __future__ import annotations

from rich.console import Console

from cockpit.cli.live import final_table, render
from cockpit.core.tail import RunTail
from engine.spec import RunSpec
from engine.store import Run


def _draw(renderable, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def _run(tmp_path, name: str = "a-rather-long-preset-name") -> Run:
    """A running run whose LR steps from 0.1 to 0.096 halfway, with a falling loss and noisy throughput."""
    run = Run.create(tmp_path, RunSpec(name=name))
    run.set_meta(state="running", total_steps=100, steps_per_epoch=10, epochs=10)
    rows = []
    for s in range(1, 41):
        rows += [(s, s / 10, "lr", 0.1 if s <= 20 else 0.096), (s, s / 10, "train_loss", 2.3 - 0.03 * s),
                 (s, s / 10, "images_per_s", 1200 + (s % 3) * 20)]
        if s % 10 == 0:
            rows.append((s, s / 10, "test_acc", 0.3 + s / 100))
    run.add_metrics(rows)
    return run


def test_a_small_lr_step_is_a_small_step_with_its_range_beside_it(tmp_path):
    run = _run(tmp_path)
    tail = RunTail(run)
    tail.poll()
    lines = _draw(render(tail, 80))
    assert all(len(line) <= 80 for line in lines), lines
    assert run.run_id in lines[0], "the run id is never cut"
    [lr] = [line for line in lines if line.startswith("learning rate")]
    assert lr.endswith("0.096‥0.1"), lr
    bars = set(lr.split()[-2])
    assert not bars & set("▁▂█"), f"0.1 -> 0.096 is not drawn as a full-height fall: {lr}"
    [speed] = [line for line in lines if line.startswith("images / s")]
    assert speed.endswith("1.2k‥1.24k") and not set(speed.split()[-2]) & set("▁█"), speed
    [loss] = [line for line in lines if line.startswith("train loss")]
    assert "█" in loss and "▁" in loss, f"a real fall still spans the height: {loss}"


def test_the_final_table_names_metrics_as_the_catalogue_does(tmp_path):
    text = "\n".join(_draw(final_table(_run(tmp_path))))
    assert "train loss" in text and "test accuracy" in text and "images / s" in text
    assert "train_loss" not in text and "images_per_s" not in text
    assert "70.00%" in text and "1,220" in text


def test_the_best_test_accuracy_shown_is_best_pts_chosen_on_validation(tmp_path):
    """The highest test accuracy (90%) is never the claim: best.pt is the evaluation with the highest
    validation accuracy (step 30: val 80%), whose test accuracy is 70%."""
    run = Run.create(tmp_path, RunSpec(name="selection"))
    run.set_meta(state="running", total_steps=30, steps_per_epoch=10, epochs=3)
    evals = {10: (0.5, 0.6), 20: (0.9, 0.5), 30: (0.7, 0.8)}  # step: (test_acc, val_acc)
    run.add_metrics([(s, s / 10, name, v) for s, (t, va) in evals.items()
                     for name, v in (("test_acc", t), ("val_acc", va), ("train_loss", 1.0))])
    [row] = [line for line in _draw(final_table(run)) if "test accuracy" in line]
    assert [c.strip() for c in row.split("│")[2:4]] == ["70.00%", "70.00%"], row  # final, best.pt: both step 30's
    text = "\n".join(_draw(final_table(run)))
    assert "best.pt (step 30, chosen on val acc)" in text and "90.00%" not in text, text
    [val] = [line for line in _draw(final_table(run)) if "val accuracy" in line]
    assert "80.00%" in val, val
    tail = RunTail(run)
    tail.poll()
    [live] = [line for line in _draw(render(tail, 80)) if line.startswith("best.pt test accuracy")]
    assert "70.00%" in live and "90" not in live, live


def test_piped_lines_say_when_a_live_run_stops_and_starts_responding(tmp_path):
    """A log (nohup, CI) gets a line when the worker goes silent and one when it beats again."""
    import io
    import os
    import socket
    import time

    from cockpit.cli.plain import PlainLines
    from cockpit.core.tail import RunTail
    from engine.spec import RunSpec
    from engine.store import Run, process_start

    run = Run.create(tmp_path, RunSpec())
    run.set_meta(state="running", host=socket.gethostname(), pid=os.getpid(), pid_start=process_start(os.getpid()),
                 heartbeat=time.time() - 125)
    tail, out = RunTail(run), io.StringIO()
    tail.poll()
    lines = PlainLines(tail, out)
    assert "  not responding  no heartbeat for 2m 05s" in out.getvalue(), out.getvalue()
    run.set_meta(heartbeat=time.time())
    tail.poll()
    lines.update()
    assert out.getvalue().splitlines()[-1].endswith("responding again (running)")
    run.set_meta(heartbeat=time.time() - 60)
    tail.poll()
    lines.update()
    assert out.getvalue().splitlines()[-1].endswith("not responding: no heartbeat for 1m 00s")
