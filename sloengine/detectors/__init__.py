"""Detectors: "worse than it was". Each compares a ratio (dollars per call, cached input
tokens per input token, tokens per call, calls over their token budget per call) over a
recent window with the same ratio over a baseline window just before it, per group.

The pieces, each pure: ``spec`` (the SLO.yaml models), ``catalog`` (what each kind reads,
per preset), ``model`` (a resolved detector), ``checks`` (what validation needs the whole
file for), ``rules`` (recording and alerting rules) and ``ruletests`` (promtool cases).
"""

# sloengine.spec builds SLOFile on this package's models, which build on sloengine.spec's
# field types: importing sloengine.spec first keeps that cycle in one order whichever
# module is imported first.
from sloengine import spec as _spec  # noqa: F401
