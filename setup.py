"""The package list, beside pyproject.toml (which holds everything else).

The presets are a top-level folder of the project (presets/, presets/sweeps/), and the wheel ships them
inside the package as cockpit/presets/: setuptools maps that folder into the package here."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["engine", "engine.*", "cockpit", "cockpit.*"]), "cockpit.presets", "cockpit.presets.sweeps"],
    package_dir={"cockpit.presets": "presets"},
)
