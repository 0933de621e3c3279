"""Sweeps: many runs of one base preset, coordinated by an Optuna study.

`config` reads and checks a sweep file (no Optuna, no torch), `locate` points its errors at
file:line:col, `study` is the Optuna side (storage, sampler, pruner, the trial queue), `runner` runs
trials as ordinary runs through a launcher it is given, `table` recomputes the results from the
trials' run stores alone (no Optuna, no torch: the views import it).

Importing this package imports nothing heavy; import the submodule you need.
"""
