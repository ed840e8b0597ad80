"""Backtests: what an SLO's alerts would have done over its past (``sloengine backtest``).

:mod:`.replay` replays one SLO's history through the shared status and alerting
decisions, :mod:`.report` turns replays into text, markdown and JSON, compares two
policies and scores known incidents; :mod:`.history` reads the history from Prometheus.
"""
