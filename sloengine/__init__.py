"""sloengine: SLOs and multi-window burn-rate alerts for LLM services on Prometheus."""

__version__ = "0.1.0"
