"""The dashboard's System panel (cockpit/tui/widgets/system_panel.py), in a small app: what a
person reads on a CPU box, on a GPU box, and before the first sample."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import Grid

from cockpit.tui.widgets.system_panel import SystemPanel, system_lines

HOST = {"system/cpu": 0.37, "system/ram": 0.4, "system/ram_gb": 12.34, "system/disk": 0.55,
        "system/worker_ram_gb": 1.2}
GPU = {f"system/gpu{i}/{k}": v for i in (0, 1) for k, v in
       (("util", 0.98), ("mem_gb", 40.1), ("mem", 0.29), ("temp_c", 71), ("power_w", 420.3))}
TWO_GPUS = {"gpus": [{"index": 0, "name": "NVIDIA H200"}, {"index": 1, "name": "NVIDIA H200"}]}


class PanelsApp(App):
    CSS = "Grid { grid-size: 2; } .trace-panel { border: round white; height: auto; padding: 0 1; }"

    def compose(self) -> ComposeResult:
        with Grid():
            yield SystemPanel(id="cpu-box")
            yield SystemPanel(id="gpu-box")

    def on_mount(self) -> None:
        self.query_one("#cpu-box", SystemPanel).show({"gpus": []}, HOST)
        self.query_one("#gpu-box", SystemPanel).show(TWO_GPUS, {**HOST, **GPU})


def _text(panel: SystemPanel) -> str:
    return str(panel.query_one(".system-lines").render())


async def test_a_cpu_box_says_no_gpu_and_a_gpu_box_shows_each_device():
    async with PanelsApp().run_test(size=(80, 12)) as pilot:
        await pilot.pause()
        cpu = _text(pilot.app.query_one("#cpu-box", SystemPanel))
        assert "no GPU" in cpu and "CPU 37%" in cpu and "RAM 12.3 GB (40%)" in cpu
        gpu = _text(pilot.app.query_one("#gpu-box", SystemPanel))
        assert "gpu0 util 98% · mem 40.1 GB (29%)" in gpu and "gpu1" in gpu and "71°C · 420 W" in gpu
        assert pilot.app.query_one("#gpu-box").border_title == "System"


def test_before_the_first_sample_and_on_an_old_run_it_says_so():
    assert system_lines({}, {"train_loss": 1.0})[0].plain == "waiting for the worker's first sample"
    assert system_lines({"ended": 1.0}, {"train_loss": 1.0})[0].plain == "no system metrics in this run"


def test_every_line_fits_a_panel_at_80_columns():
    for line in system_lines(TWO_GPUS, {**HOST, **GPU}):
        assert len(line.plain) <= 36, line.plain  # half of 80 columns, less borders and padding


def test_snapshot_system_panels_cpu_and_gpu(snap_compare):
    assert snap_compare(PanelsApp(), terminal_size=(80, 12))
