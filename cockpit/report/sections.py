"""The report's sections and charts: every format has all the sections, in this order."""

from __future__ import annotations

# section id -> heading; every report has all of them, in this order (a note stands in for missing data)
SECTIONS = {
    "header": "Run",
    "spec": "Spec",
    "metrics": "Final and best metrics",
    "finishing": "Finishing passes",
    "training": "Training curves",
    "calibration": "Calibration",
    "classes": "Classes",
    "difficulty": "Sample difficulty",
    "throughput": "Throughput and system",
    "layers": "Layers",
    "hardest": "Hardest examples",
    "timeline": "Timeline and events",
}
# chart id -> section id: every chart a full report draws
CHARTS = {
    "chart-loss": "training", "chart-accuracy": "training", "chart-lr": "training",
    "chart-grad-norm": "training", "chart-saturation": "training",
    "chart-reliability": "calibration",
    "chart-per-class": "classes", "chart-confusion": "classes",
    "chart-difficulty": "difficulty", "chart-difficulty-hist": "difficulty",
    "chart-throughput": "throughput", "chart-step-time": "throughput",
    "chart-timeline": "timeline",
}
