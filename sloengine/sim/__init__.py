"""The simulation toolkit shared by the demo, the tests and ``bench/``.

Each module imports only modules above it in this list, so the model imports none.

- ``traffic``: the pure model of a synthetic LLM service (Scenario, Incident, Scope,
  Traffic, ``truth``, ``series_at``, ``example_scenario``); no I/O.
- ``openmetrics``: the model's series as text (OpenMetrics for promtool, the scrape
  format), and the one parser of Prometheus's text exposition.
- ``launch``: a local Prometheus on a free port over a TSDB (its configuration too).
- ``backfill``: history written into a TSDB with promtool (raw series, recording rules).
- ``exporter``: the simulated service's live /metrics endpoint.
- ``client``: the small Prometheus HTTP client the demo, tests and benchmarks read with.
"""
