"""The web page: every SLO's state, budget and burn at a glance, and a page per SLO.

``views`` and ``charts`` turn statuses, explanations, history and series into plain
data; ``pages`` renders it as HTML (jinja2, autoescaped); ``app`` is the shell that
reads Prometheus and the state database and serves it over HTTP.
"""
