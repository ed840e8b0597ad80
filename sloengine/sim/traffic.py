"""A synthetic LLM service: deterministic traffic for the ``llm`` preset metrics.

Integration tests, the demo and the benchmarks need months of realistic metrics with
known answers. Nothing here is sampled at random. Every integer counter is the
*expected* number of events since the scenario's origin, rounded down, and that
expectation has a closed form in time (a smooth traffic curve, integrated exactly,
times fractions that only change at incident boundaries). So:

- a counter's value at any instant is computed directly, without replaying history,
  which lets the OpenMetrics writer stream one series after another, in any time range,
  in constant memory;
- :func:`truth` reads the very same counters, so the increase Prometheus sees between
  two sample timestamps equals the ground truth to the event;
- a scenario replays bit for bit; the seed only picks traffic weights, per-model speed
  and price, and the traffic jitter.

Histogram buckets are built like real ones: each bin between two bounds counts on its
own and buckets are running sums of bins, so ``le`` buckets never decrease with the
bound and no bucket grows faster than ``_count``. Successful requests are split the
same way into clean, guardrail-rejected and validation-failed parts, so the bad events
of ``success_rate`` (errors plus the optional includes) never outgrow the requests.

This module is the model alone, with no I/O; the writers, the exporter and the local
Prometheus that consume it are the other modules of :mod:`sloengine.sim`.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Protocol, get_args

from sloengine import promql, sli
from sloengine.detectors import catalog as detector_catalog
from sloengine.spec import LABEL_NAME, SLIKind


def _catalog_name(kind: str) -> str:
    # The simulator emits exactly what the llm preset reads; the name is spelled once, there.
    entry = sli.CATALOG["llm"][SLIKind(kind)]
    if isinstance(entry, sli.Requests):
        return entry.total
    if isinstance(entry, sli.Histogram):
        return entry.base
    return entry.name


REQUESTS = _catalog_name("success_rate")  # llm_requests_total
TTFT = _catalog_name("ttft")  # llm_ttft_seconds
LATENCY = _catalog_name("latency")  # llm_total_latency_seconds
COST_PER_REQUEST = _catalog_name("cost_per_call")  # llm_cost_per_request_usd
EVAL_SCORE = _catalog_name("quality")  # llm_eval_score
SPEND = _catalog_name("spend")  # llm_cost_usd_total
# The detectors' counters (sloengine.detectors.catalog), in leaf order.
TOKEN_COUNTERS = (
    (detector_catalog.LLM_INPUT_TOKENS, "Prompt tokens sent, those read from the cache included."),
    (detector_catalog.LLM_OUTPUT_TOKENS, "Completion tokens received."),
    (detector_catalog.LLM_CACHE_READ_TOKENS, "Prompt tokens read from the provider's cache."),
    (detector_catalog.LLM_TOKEN_BUDGET_EXCEEDED, "Requests over their feature's token budget."),
)
TPOT = _catalog_name("tpot")  # llm_tpot_seconds
VALIDATION_ERRORS = sli.INCLUDES["validation_errors"]
GUARDRAIL_REJECTIONS = sli.INCLUDES["guardrail_rejections"]

PROVIDER, MODEL, FEATURE, STATUS = "provider", "model", "feature", "status"
OK, ERROR = "ok", "error"
DIMENSIONS = (PROVIDER, MODEL, FEATURE)
# The prompt version label (Scenario.prompt_versions): every series carries the version
# its calls ran, the first until a prompt_rollout moves its traffic to the second.
PROMPT_SHA = "prompt_sha"
PROMPT_VERSIONS = ("1a2b3c4", "9f8e7d6")

IncidentKind = Literal[
    "error_rate",  # provider outage: this fraction of requests fails (status="error")
    "ttft_slowdown",  # this fraction of requests gets its first token after `threshold` s
    "latency_slowdown",  # this fraction of requests completes after `threshold` s
    "cost_spike",  # this fraction of requests costs more than `threshold` USD
    "quality_drop",  # this fraction of evaluated answers scores below `threshold`
    "guardrail_rejections",  # this fraction of successful requests is rejected
    "validation_errors",  # this fraction of the rest fails output validation
    "zero_traffic",  # no requests at all (intensity is ignored)
    "traffic_surge",  # traffic times `intensity` (any factor >= 0)
    # What the detectors are for (a service that works but costs more):
    # each request retries `intensity` times (any number >= 0): cost and tokens per
    # request times 1 + intensity, requests unchanged
    "retry_storm",
    "token_growth",  # a longer prompt or answer: tokens per request times 1 + intensity (>= 0)
    "cache_break",  # this fraction of the prompt-cache hits is lost
    "token_budget_breaches",  # this fraction of requests goes over its token budget
    # the scoped calls move to a new prompt version (prompt_versions only) that costs, in
    # dollars and tokens, 1 + intensity times what the old one did
    "prompt_rollout",
    "tpot_slowdown",  # this fraction of requests streams each token after `threshold` s
]
INCIDENT_KINDS: tuple[str, ...] = get_args(IncidentKind)
# Kinds whose intensity is an increase (cost or tokens times 1 + intensity), not a share.
_GROWTH = frozenset({"retry_storm", "token_growth", "prompt_rollout"})

# Where affected requests land, per kind, unless the incident names its own threshold.
# These match the thresholds of the example SLOs in slos/chat-assistant.yaml.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ttft_slowdown": 1.0,
    "latency_slowdown": 5.0,
    "cost_spike": 0.1,
    "quality_drop": 0.8,
    "tpot_slowdown": 0.05,
}

TruthKind = Literal["success_rate", "ttft", "latency", "cost_per_call", "quality", "spend", "tpot"]
TRUTH_KINDS: tuple[str, ...] = get_args(TruthKind)

_PROVIDER_MODELS: dict[str, tuple[str, ...]] = {
    "openai": ("gpt-4o", "gpt-4o-mini", "o3-mini"),
    "anthropic": ("claude-sonnet-4", "claude-haiku-3-5", "claude-opus-4"),
    "google": ("gemini-2-flash", "gemini-2-pro", "gemini-1-5-flash"),
    "mistral": ("mistral-large", "mistral-small", "codestral"),
    "cohere": ("command-r-plus", "command-r", "command-light"),
}
_FEATURES = ("chat", "summarize", "search", "classify", "extract", "translate", "code", "agent")


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Scope:
    """Which traffic an incident hits (or :func:`truth` counts); None matches every value."""

    provider: str | None = None
    model: str | None = None
    feature: str | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        wanted = {PROVIDER: self.provider, MODEL: self.model, FEATURE: self.feature}
        return all(v is None or labels[k] == v for k, v in wanted.items())


@dataclass(frozen=True)
class Incident:
    """Something going wrong between ``start`` (inclusive) and ``end`` (exclusive), unix s.

    ``intensity`` is the fraction of the scoped requests affected (a traffic factor for
    ``traffic_surge``; for the growth kinds, ``retry_storm``, ``token_growth`` and
    ``prompt_rollout``, the increase, 1 for twice as much). Overlapping incidents of one kind compound: each takes its
    fraction of what the earlier ones left unaffected.
    """

    start: float
    end: float
    kind: IncidentKind
    intensity: float = 1.0
    scope: Scope = field(default_factory=Scope)
    threshold: float | None = None  # seconds, USD or score; DEFAULT_THRESHOLDS otherwise

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident kind {self.kind!r}; use one of {INCIDENT_KINDS}")
        if not self.end > self.start:
            raise ValueError(f"{self.kind} incident ends ({self.end}) before it starts")
        if self.kind == "traffic_surge":
            if not 0 <= self.intensity < math.inf:
                raise ValueError("traffic_surge intensity is a traffic factor >= 0")
        elif self.kind in _GROWTH:
            if not 0 <= self.intensity < math.inf:
                raise ValueError(f"{self.kind} intensity is an increase >= 0 (1 doubles)")
        elif not 0 <= self.intensity <= 1:
            raise ValueError(f"{self.kind} intensity is a fraction in [0, 1]")
        if self.threshold is not None and not self.threshold > 0:
            raise ValueError(f"{self.kind} threshold must be > 0")

    @property
    def bound(self) -> float:
        """The threshold the affected requests cross."""
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[self.kind]

    def active(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Traffic:
    """Requests per second across the whole service, averaged over a day.

    With ``peak_to_trough`` r > 1 the rate follows a daily cosine that peaks at
    ``peak_hour_utc`` and is r times lower twelve hours later. ``jitter`` (0 <= j < 1) adds
    a few seeded waves (periods of minutes to hours) of total relative amplitude j.
    """

    base_rps: float = 1.0
    peak_to_trough: float = 1.0
    peak_hour_utc: float = 15.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.base_rps < math.inf:
            raise ValueError("base_rps must be > 0")
        if not 1 <= self.peak_to_trough < math.inf:
            raise ValueError("peak_to_trough must be >= 1 (1 = no day/night cycle)")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1): the rate has to stay positive")


@dataclass(frozen=True)
class Baseline:
    """How the service behaves outside incidents.

    Latencies and costs are log-normal (median and log-spread); each model scales its
    medians by a seeded factor in [1 - model_spread, 1 + model_spread]. Eval scores are
    ``1 - X`` with X exponential of mean ``eval_shortfall``, clipped at 0.
    """

    error_rate: float = 0.001
    guardrail_rate: float = 0.001  # of successful requests
    validation_error_rate: float = 0.0005  # of successful requests the guardrails let through
    ttft_median_s: float = 0.3
    ttft_spread: float = 0.4
    latency_median_s: float = 1.5
    latency_spread: float = 0.4
    cost_median_usd: float = 0.008
    cost_spread: float = 0.7
    eval_sample_rate: float = 0.1  # fraction of successful requests an eval judge scores
    eval_shortfall: float = 0.04
    model_spread: float = 0.2
    # The detectors' counters (per successful request; each model scales input and output
    # tokens by its price factor): tokens in and out, the share of input tokens read from
    # the provider's prompt cache, and the share of requests over their token budget.
    input_tokens: float = 1500.0
    output_tokens: float = 400.0
    cache_hit_ratio: float = 0.6
    token_budget_breach_rate: float = 0.002
    # 50 tokens a second: a 50ms TPOT threshold leaves about one answer in a thousand slow.
    tpot_median_s: float = 0.02
    tpot_spread: float = 0.25

    def __post_init__(self) -> None:
        fractions = {
            "error_rate": self.error_rate,
            "guardrail_rate": self.guardrail_rate,
            "validation_error_rate": self.validation_error_rate,
            "eval_sample_rate": self.eval_sample_rate,
            "cache_hit_ratio": self.cache_hit_ratio,
            "token_budget_breach_rate": self.token_budget_breach_rate,
        }
        for name, value in fractions.items():
            if not 0 <= value <= 1:
                raise ValueError(f"{name} is a fraction in [0, 1]")
        if not 0 <= self.model_spread < 1:
            raise ValueError("model_spread must be in [0, 1)")
        positive = (
            self.ttft_median_s,
            self.ttft_spread,
            self.latency_median_s,
            self.latency_spread,
            self.cost_median_usd,
            self.cost_spread,
            self.eval_shortfall,
            self.tpot_median_s,
            self.tpot_spread,
        )
        if not all(0 < v < math.inf for v in positive):
            raise ValueError("medians, spreads and eval_shortfall must be > 0")


@dataclass(frozen=True)
class Buckets:
    """Histogram bucket bounds (``+Inf`` is added). SLO thresholds must be among them."""

    ttft_s: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)
    latency_s: tuple[float, ...] = (0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60)
    cost_usd: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1)
    score: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1)
    # Time per output token: 10ms (100 tokens/s) to 1s, finest around the usual 30-100ms
    # thresholds of streaming UIs.
    tpot_s: tuple[float, ...] = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1)

    def __post_init__(self) -> None:
        for name in ("ttft_s", "latency_s", "cost_usd", "score", "tpot_s"):
            bounds = getattr(self, name)
            ordered = all(a < b for a, b in itertools.pairwise(bounds))
            if not bounds or not ordered or bounds[0] <= 0 or not bounds[-1] < math.inf:
                raise ValueError(f"{name} bounds must be positive, finite and ascending")


@dataclass(frozen=True)
class Scenario:
    """A whole simulated service: its label space, traffic, health and incidents.

    Every counter is zero at ``origin`` (unix seconds); nothing exists before it. The
    label space is ``providers`` x ``models_per_provider`` models x ``features``, and
    ``labels`` (e.g. ``{"service": "chat-assistant"}``) are added to every series.
    ``le_style`` spells bucket bounds like Prometheus 2 and Go clients (``"short"``:
    ``le="1"``) or like Prometheus 3 and Python clients (``"float"``: ``le="1.0"``).
    """

    origin: int
    traffic: Traffic = field(default_factory=Traffic)
    providers: int = 2
    models_per_provider: int = 2
    features: int = 2
    labels: Mapping[str, str] = field(default_factory=dict)
    incidents: tuple[Incident, ...] = ()
    baseline: Baseline = field(default_factory=Baseline)
    buckets: Buckets = field(default_factory=Buckets)
    seed: int = 0
    le_style: Literal["short", "float"] = "short"
    # Label every series with the prompt version (PROMPT_SHA): twice the series, half of
    # them at zero until a prompt_rollout. Off, the series keep their names and counts.
    prompt_versions: bool = False

    def __post_init__(self) -> None:
        for name in ("providers", "models_per_provider", "features"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        reserved = {*DIMENSIONS, PROMPT_SHA, STATUS, "le", "__name__"}
        for name in self.labels:
            if not LABEL_NAME.match(name) or name in reserved:
                raise ValueError(f"{name!r} cannot be a static label (reserved or invalid)")
        if self.le_style not in ("short", "float"):
            raise ValueError("le_style is 'short' (le=\"1\") or 'float' (le=\"1.0\")")
        combos = self.combos
        for incident in self.incidents:
            if incident.kind == "prompt_rollout" and not self.prompt_versions:
                raise ValueError("a prompt_rollout needs prompt_versions=True")
            if not any(incident.scope.matches(c) for c in combos):
                raise ValueError(
                    f"{incident.kind} incident scope {incident.scope} matches no traffic"
                )

    @cached_property
    def combos(self) -> list[dict[str, str]]:
        """Every (provider, model, feature) label set that carries traffic."""
        out = []
        for p in range(self.providers):
            provider = list(_PROVIDER_MODELS)[p] if p < len(_PROVIDER_MODELS) else f"provider-{p}"
            known = _PROVIDER_MODELS.get(provider, ())
            for m in range(self.models_per_provider):
                model = known[m] if m < len(known) else f"{provider}-model-{m}"
                for f in range(self.features):
                    feature = _FEATURES[f] if f < len(_FEATURES) else f"feature-{f}"
                    labels = {PROVIDER: provider, MODEL: model, FEATURE: feature}
                    if not self.prompt_versions:
                        out.append(labels)
                        continue
                    out += [{**labels, PROMPT_SHA: sha} for sha in PROMPT_VERSIONS]
        return out

    @property
    def series_count(self) -> int:
        """Raw series in the exposition: requests x2, three counters, five histograms and
        the detectors' token counters."""
        b = self.buckets
        bounds = (b.ttft_s, b.latency_s, b.cost_usd, b.score, b.tpot_s)
        histogram = sum(len(x) + 3 for x in bounds)
        return len(self.combos) * (2 + 3 + histogram + len(TOKEN_COUNTERS))

    @cached_property
    def compiled(self) -> Model:
        # Built once per scenario; cached_property writes __dict__ directly, which a
        # frozen dataclass allows, and it stays out of equality and repr.
        return Model(self)


# ------------------------------------------------------------------- traffic over time


class _Shape:
    """The service-wide request rate and its exact integral since the origin.

    rate(t) = base * d(t) * (1 + n(t)) with d the daily cosine and n the jitter waves.
    The product expands into cosines, so the integral is a closed-form sum of sines:
    no numeric integration, and the same t always gives the same float.
    """

    def __init__(self, scenario: Scenario) -> None:
        traffic = scenario.traffic
        self.origin = scenario.origin
        self.base = traffic.base_rps
        r = traffic.peak_to_trough
        day = 2 * math.pi / 86400
        # peak = 1 + a, trough = 1 - a, mean 1: (1 + a) / (1 - a) = r.
        a = (r - 1) / (r + 1)
        offset = (scenario.origin - traffic.peak_hour_utc * 3600) % 86400
        waves = [(1.0, 0.0, 0.0)]  # (amplitude, angular frequency, phase) of cosines
        daily = (a, day, day * offset)
        if a:
            waves.append(daily)
        rng = _rng(scenario.seed, "jitter")
        weights = [rng.uniform(0.5, 1.0) for _ in range(3)]
        for w in weights:
            period = rng.uniform(600, 3 * 3600)
            amp = traffic.jitter * w / sum(weights)
            phase = rng.uniform(0, 2 * math.pi)
            if not amp:
                continue
            waves.append((amp, 2 * math.pi / period, phase))
            if a:  # cos x cos y = (cos(x + y) + cos(x - y)) / 2
                waves.append((a * amp / 2, day + 2 * math.pi / period, daily[2] + phase))
                waves.append((a * amp / 2, day - 2 * math.pi / period, daily[2] - phase))
        self.waves = waves

    def rate(self, t: float) -> float:
        """Requests per second at ``t`` (all traffic, before incidents)."""
        tau = t - self.origin
        return self.base * sum(a * math.cos(w * tau + p) for a, w, p in self.waves)

    def integral(self, t: float) -> float:
        """Integral of rate / base from the origin to ``t``, in seconds of mean traffic."""
        tau = t - self.origin
        total = 0.0
        for a, w, p in self.waves:
            if abs(w) < 1e-15:
                total += a * math.cos(p) * tau
            else:
                total += a / w * (math.sin(w * tau + p) - math.sin(p))
        return total


def _rng(seed: int, *names: str) -> random.Random:
    # One stream per purpose and entity: adding a model does not reshuffle the others.
    # String seeds go through SHA-512, so they are stable across runs and Python versions.
    return random.Random(":".join([str(seed), *names]))


# ---------------------------------------------------------------- value distributions


class _Distribution(Protocol):
    def cdf(self, x: float) -> float: ...

    def mean(self) -> float: ...


@dataclass(frozen=True)
class _LogNormal:
    median: float
    spread: float

    def cdf(self, x: float) -> float:
        if x <= 0:
            return 0.0
        return 0.5 * math.erfc(-math.log(x / self.median) / (self.spread * math.sqrt(2)))

    def mean(self) -> float:
        return self.median * math.exp(self.spread**2 / 2)


@dataclass(frozen=True)
class _Above:
    """Affected requests: the threshold plus an exponential tail, all strictly above it."""

    threshold: float

    def cdf(self, x: float) -> float:
        return 0.0 if x <= self.threshold else -math.expm1(-(x - self.threshold) / self.threshold)

    def mean(self) -> float:
        return 2 * self.threshold


@dataclass(frozen=True)
class _Below:
    """Bad eval scores: uniform below the threshold."""

    threshold: float

    def cdf(self, x: float) -> float:
        return min(1.0, max(0.0, x / self.threshold))

    def mean(self) -> float:
        return self.threshold / 2


@dataclass(frozen=True)
class _Score:
    """Healthy eval scores: 1 - Exp(shortfall), clipped at 0."""

    shortfall: float

    def cdf(self, x: float) -> float:
        if x < 0:
            return 0.0
        return 1.0 if x >= 1 else math.exp(-(1 - x) / self.shortfall)

    def mean(self) -> float:
        return 1 - self.shortfall * -math.expm1(-1 / self.shortfall)


Mixture = list[tuple[float, _Distribution]]


def _bins(mixture: Mixture, bounds: Sequence[float]) -> list[float]:
    """Probability of each bin: (-inf, b0], (b0, b1], ..., (b_last, +inf)."""
    cdf = [sum(w * d.cdf(b) for w, d in mixture) for b in bounds]
    edges = [0.0, *cdf, 1.0]
    return [max(0.0, hi - lo) for lo, hi in itertools.pairwise(edges)]


def _mean(mixture: Mixture) -> float:
    return sum(w * d.mean() for w, d in mixture)


# ------------------------------------------------------------------ compiled counters


@dataclass(frozen=True)
class _Histogram:
    key: str  # the incident target and leaf-layout name
    name: str
    bounds: tuple[float, ...]
    help: str
    first: int  # index of the first bin leaf; bins, then the sum leaf

    @property
    def sum_leaf(self) -> int:
        return self.first + len(self.bounds) + 1  # one bin per bound, plus (last, +Inf)


# Leaves are the independent counters everything else is summed from: four request
# outcomes, then per histogram its bins and its sum. Integer leaves are floored.
_ERROR, _CLEAN, _GUARDED, _INVALID = range(4)
_DETECTOR_INCIDENTS = frozenset(
    {"retry_storm", "token_growth", "cache_break", "token_budget_breaches", "prompt_rollout"}
)
_SHIFT_TARGET = {
    "ttft_slowdown": "ttft",
    "latency_slowdown": "latency",
    "cost_spike": "cost",
    "quality_drop": "eval",
    "tpot_slowdown": "tpot",
}


class Combo:
    """One (provider, model, feature): its piecewise-constant fractions and their prefixes."""

    def __init__(self, model: Model, labels: dict[str, str], weight: float) -> None:
        self.labels = labels
        self.scale = model.shape.base * weight  # events per second of mean traffic
        scenario = model.scenario
        rng = _rng(scenario.seed, "model", labels[PROVIDER], labels[MODEL])
        s = scenario.baseline.model_spread
        self.speed = (rng.uniform(1 - s, 1 + s), rng.uniform(1 - s, 1 + s))
        self.price = rng.uniform(1 - s, 1 + s)
        incidents = [i for i in scenario.incidents if i.scope.matches(labels)]
        cuts = {float(scenario.origin)}
        cuts |= {float(t) for i in incidents for t in (i.start, i.end) if t > scenario.origin}
        self.starts = sorted(cuts)
        self.r_starts = [model.shape.integral(t) for t in self.starts]
        self.fractions = [
            model.fractions(self, [i for i in incidents if i.active(t)]) for t in self.starts
        ]
        # prefix[k][i]: leaf i's events per unit of `scale` before segment k started.
        self.prefix = [[0.0] * len(model.integral)]
        for k in range(1, len(self.starts)):
            dr = self.r_starts[k] - self.r_starts[k - 1]
            prev, frac = self.prefix[-1], self.fractions[k - 1]
            self.prefix.append([p + f * dr for p, f in zip(prev, frac, strict=True)])
        self.integral = model.integral

    def leaves(self, t: float, r: float, lo: int, hi: int) -> list[float]:
        """Leaves lo..hi-1 at time ``t``, where ``r`` is the shape integral at ``t``."""
        k = bisect.bisect_right(self.starts, t) - 1
        if k < 0:
            raise ValueError(f"t={t} is before the scenario origin {self.starts[0]:.0f}")
        d = r - self.r_starts[k]
        p, f, scale, integral = self.prefix[k], self.fractions[k], self.scale, self.integral
        out: list[float] = []
        for i in range(lo, hi):
            x = scale * (p[i] + f[i] * d)
            out.append(math.floor(x) if integral[i] else x)
        return out


class Model:
    """A scenario compiled into combos of closed-form leaf counters."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.shape = _Shape(scenario)
        b = scenario.buckets
        specs = [
            ("ttft", TTFT, b.ttft_s, "Time to first token of successful requests."),
            ("latency", LATENCY, b.latency_s, "End-to-end latency of successful requests."),
            ("cost", COST_PER_REQUEST, b.cost_usd, "Provider cost per successful request."),
            ("eval", EVAL_SCORE, b.score, "Eval judge scores of sampled answers (0..1)."),
            ("tpot", TPOT, b.tpot_s, "Time per output token after the first, per request."),
        ]
        self.histograms: dict[str, _Histogram] = {}
        integral = [True] * 4
        for key, name, bounds, text in specs:
            self.histograms[key] = _Histogram(key, name, bounds, text, len(integral))
            integral += [True] * (len(bounds) + 1) + [False]
        # The detectors' token and budget counters, after the histograms.
        self.tokens_first = len(integral)
        integral += [True] * len(TOKEN_COUNTERS)
        self.integral = integral
        weights = [self._weight(c) for c in scenario.combos]
        # Each version of a label set carries the set's whole traffic while it is live.
        total = sum(
            w
            for w, c in zip(weights, scenario.combos, strict=True)
            if c.get(PROMPT_SHA, PROMPT_VERSIONS[0]) == PROMPT_VERSIONS[0]
        )
        self.combos = [
            Combo(self, c, w / total) for c, w in zip(scenario.combos, weights, strict=True)
        ]

    def _weight(self, labels: dict[str, str]) -> float:
        # Traffic share = provider share x model share x feature share, all seeded.
        seed = self.scenario.seed
        return (
            _rng(seed, "share", labels[PROVIDER]).uniform(0.5, 1.5)
            * _rng(seed, "share", labels[PROVIDER], labels[MODEL]).uniform(0.5, 1.5)
            * _rng(seed, "share", "feature", labels[FEATURE]).uniform(0.5, 1.5)
        )

    def fractions(self, combo: Combo, active: Sequence[Incident]) -> list[float]:
        """Events per request for every leaf while exactly ``active`` incidents run."""
        base = self.scenario.baseline
        traffic, keep_ok, keep_guard, keep_valid = 1.0, 1 - base.error_rate, 1.0, 1.0
        keep_guard -= base.guardrail_rate
        keep_valid -= base.validation_error_rate
        ttft_speed, latency_speed = combo.speed
        cost_factor, token_factor, keep_cache = 1.0, 1.0, 1.0
        breaches = base.token_budget_breach_rate
        if self.scenario.prompt_versions:
            rolled = any(i.kind == "prompt_rollout" for i in active)
            if (combo.labels[PROMPT_SHA] == PROMPT_VERSIONS[1]) != rolled:
                traffic = 0.0  # the version not live now
        for incident in active:
            x = incident.intensity
            if incident.kind in ("retry_storm", "prompt_rollout"):
                cost_factor *= 1 + x
                token_factor *= 1 + x
            elif incident.kind == "token_growth":
                token_factor *= 1 + x
            elif incident.kind == "cache_break":
                keep_cache *= 1 - x
            elif incident.kind == "token_budget_breaches":
                breaches += (1 - breaches) * x
        cost_median = base.cost_median_usd * combo.price * cost_factor
        mixtures: dict[str, Mixture] = {
            "ttft": [(1.0, _LogNormal(base.ttft_median_s * ttft_speed, base.ttft_spread))],
            "latency": [
                (1.0, _LogNormal(base.latency_median_s * latency_speed, base.latency_spread))
            ],
            "cost": [(1.0, _LogNormal(cost_median, base.cost_spread))],
            "eval": [(1.0, _Score(base.eval_shortfall))],
            # Decode speed follows the model like TTFT does.
            "tpot": [(1.0, _LogNormal(base.tpot_median_s * ttft_speed, base.tpot_spread))],
        }
        for incident in active:
            x = incident.intensity
            if incident.kind == "zero_traffic":
                traffic = 0.0
            elif incident.kind == "traffic_surge":
                traffic *= x
            elif incident.kind == "error_rate":
                keep_ok *= 1 - x
            elif incident.kind == "guardrail_rejections":
                keep_guard *= 1 - x
            elif incident.kind == "validation_errors":
                keep_valid *= 1 - x
            elif incident.kind in _DETECTOR_INCIDENTS:
                continue  # applied above
            else:
                key = _SHIFT_TARGET[incident.kind]
                shifted: _Distribution = (
                    _Below(incident.bound) if key == "eval" else _Above(incident.bound)
                )
                mixtures[key] = [(w * (1 - x), d) for w, d in mixtures[key]] + [(x, shifted)]
        ok = traffic * keep_ok
        out = [
            traffic * (1 - keep_ok),
            ok * keep_guard * keep_valid,
            ok * (1 - keep_guard),
            ok * keep_guard * (1 - keep_valid),
        ]
        for key, h in self.histograms.items():
            observed = ok * (base.eval_sample_rate if key == "eval" else 1.0)
            out += [observed * p for p in _bins(mixtures[key], h.bounds)]
            out.append(observed * _mean(mixtures[key]))
        tokens_in = base.input_tokens * combo.price * token_factor
        out += [
            ok * tokens_in,
            ok * base.output_tokens * combo.price * token_factor,
            ok * tokens_in * base.cache_hit_ratio * keep_cache,
            ok * breaches,
        ]
        return out

    def select(self, where: Scope | None) -> list[Combo]:
        chosen = [c for c in self.combos if where is None or where.matches(c.labels)]
        if not chosen:
            raise ValueError(f"{where} matches no traffic")
        return chosen

    def le(self, bound: float) -> str:
        return repr(float(bound)) if self.scenario.le_style == "float" else promql.number(bound)

    def label_text(self, combo: Combo) -> str:
        return promql.exposition_labels([*self.scenario.labels.items(), *combo.labels.items()])


# ----------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class Truth:
    """Events in a time range: ``bad`` of ``total`` (for spend: dollars, and no total)."""

    bad: float
    total: float | None

    @property
    def good(self) -> float | None:
        return None if self.total is None else self.total - self.bad

    @property
    def bad_ratio(self) -> float | None:
        """Bad over total; None for spend and for a range without events (0/0)."""
        return self.bad / self.total if self.total else None


def truth(
    scenario: Scenario,
    kind: TruthKind,
    start: float,
    end: float,
    *,
    threshold: float | None = None,
    threshold_usd: float | None = None,
    min_score: float | None = None,
    include: Iterable[str] = (),
    where: Scope | None = None,
) -> Truth:
    """Exact bad and total events of an SLI kind between two instants.

    Computed from the exposed counters themselves, so for two sample timestamps it
    equals ``sum(metric @ end) - sum(metric @ start)`` in Prometheus to the event.
    Thresholds use the SLO.yaml spellings (``threshold`` works for every kind) and must
    be bucket bounds; ``include`` takes ``validation_errors``/``guardrail_rejections``.
    """
    if kind not in TRUTH_KINDS:
        raise ValueError(f"unknown SLI kind {kind!r}; use one of {TRUTH_KINDS}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    model = scenario.compiled
    combos = model.select(where)
    r0, r1 = model.shape.integral(start), model.shape.integral(end)

    def delta(lo: int, hi: int) -> list[float]:
        # Per leaf, summed over combos at each instant first: Prometheus sums that way.
        totals = []
        for t, r in ((start, r0), (end, r1)):
            rows = [c.leaves(t, r, lo, hi) for c in combos]
            totals.append([math.fsum(row[i] for row in rows) for i in range(hi - lo)])
        return [b - a for a, b in zip(*totals, strict=True)]

    if kind == "success_rate":
        error, clean, guarded, invalid = delta(_ERROR, _INVALID + 1)
        include = tuple(include)
        unknown = set(include) - set(sli.INCLUDES)
        if unknown:
            raise ValueError(f"unknown include {sorted(unknown)}; use {sorted(sli.INCLUDES)}")
        bad = error
        bad += guarded if "guardrail_rejections" in include else 0
        bad += invalid if "validation_errors" in include else 0
        return Truth(bad, error + clean + guarded + invalid)
    key = {
        "ttft": "ttft",
        "latency": "latency",
        "cost_per_call": "cost",
        "quality": "eval",
        "tpot": "tpot",
    }
    if kind == "spend":
        cost = model.histograms["cost"].sum_leaf
        return Truth(delta(cost, cost + 1)[0], None)
    h = model.histograms[key[kind]]
    given = [x for x in (threshold, threshold_usd, min_score) if x is not None]
    if len(given) != 1:
        raise ValueError(f"{kind} needs exactly one threshold")
    matches = [i for i, b in enumerate(h.bounds) if float(b) == float(given[0])]
    if not matches:
        raise ValueError(f"{kind} threshold {given[0]} is not a bucket bound of {h.bounds}")
    bins = delta(h.first, h.sum_leaf)
    within, total = sum(bins[: matches[0] + 1]), sum(bins)
    # Buckets count observations <= bound: the good side for latency and cost, the bad
    # side for quality (good = score >= min_score), exactly as the SLI queries read them.
    return Truth(within if kind == "quality" else total - within, total)


def series_at(scenario: Scenario, t: float) -> dict[str, float]:
    """Every exposed series' value at ``t``, keyed by its exposition text ``name{labels}``."""
    model = scenario.compiled
    out: dict[str, float] = {}
    r = model.shape.integral(t)
    for family in families(model):
        for combo in model.combos:
            for key, value in family.samples(combo, t, r):
                out[key] = value
    return out


def request_rate(scenario: Scenario, t: float, where: Scope | None = None) -> float:
    """Requests per second at ``t`` (before incidents), for ``where`` or the whole service."""
    model = scenario.compiled
    share = sum(c.scale for c in model.select(where)) / model.shape.base
    return model.shape.rate(t) * share


# -------------------------------------------------------------------- exposed series


class Family:
    """One metric family of the exposition and how its samples derive from leaves."""

    def __init__(self, model: Model, name: str, kind: str, text: str, lo: int, hi: int) -> None:
        self.model, self.name, self.kind, self.help = model, name, kind, text
        self.lo, self.hi = lo, hi
        self.prefixes: dict[int, list[str]] = {}

    def sample_names(self, combo: Combo) -> list[str]:
        """``name{labels} `` for each sample of one combo, in exposition order."""
        cached = self.prefixes.get(id(combo))
        if cached is not None:
            return cached
        labels = self.model.label_text(combo)
        if self.kind == "histogram":
            h = next(h for h in self.model.histograms.values() if h.name == self.name)
            les = [self.model.le(b) for b in h.bounds] + ["+Inf"]
            names = [f'{self.name}_bucket{{{labels},le="{le}"}} ' for le in les]
            names += [f"{self.name}_count{{{labels}}} ", f"{self.name}_sum{{{labels}}} "]
        elif self.name == REQUESTS:
            names = [f'{self.name}{{{labels},{STATUS}="{s}"}} ' for s in (OK, ERROR)]
        else:
            names = [f"{self.name}{{{labels}}} "]
        self.prefixes[id(combo)] = names
        return names

    def values(self, combo: Combo, t: float, r: float) -> list[float]:
        leaves = combo.leaves(t, r, self.lo, self.hi)
        if self.kind == "histogram":
            buckets: list[float] = []
            running = 0
            for v in leaves[:-1]:
                running += int(v)
                buckets.append(running)
            return [*buckets, running, leaves[-1]]
        if self.name == REQUESTS:
            error, clean, guarded, invalid = leaves
            return [clean + guarded + invalid, error]
        return leaves

    def samples(self, combo: Combo, t: float, r: float) -> list[tuple[str, float]]:
        names = self.sample_names(combo)
        return [(n.rstrip(), v) for n, v in zip(names, self.values(combo, t, r), strict=True)]


def families(model: Model) -> list[Family]:
    """The exposition's metric families, in the order every writer emits them."""
    cost_sum = model.histograms["cost"].sum_leaf
    families = [
        Family(model, REQUESTS, "counter", "LLM requests by outcome.", _ERROR, _INVALID + 1),
        Family(
            model,
            VALIDATION_ERRORS,
            "counter",
            "Answers that failed output validation.",
            _INVALID,
            _INVALID + 1,
        ),
        Family(
            model,
            GUARDRAIL_REJECTIONS,
            "counter",
            "Answers rejected by guardrails.",
            _GUARDED,
            _GUARDED + 1,
        ),
        Family(model, SPEND, "counter", "Provider spend in USD.", cost_sum, cost_sum + 1),
    ]
    for h in model.histograms.values():
        families.append(Family(model, h.name, "histogram", h.help, h.first, h.sum_leaf + 1))
    for i, (name, text) in enumerate(TOKEN_COUNTERS):
        first = model.tokens_first + i
        families.append(Family(model, name, "counter", text, first, first + 1))
    return families


# ------------------------------------------------------------------------- an example


def example_scenario(
    origin: int,
    days: int = 30,
    *,
    base_rps: float = 1.0,
    service: str = "chat-assistant",
    providers: int = 2,
    models_per_provider: int = 2,
    features: int = 2,
    seed: int = 0,
) -> Scenario:
    """A month in the life of an LLM chatbot: 20:1 day/night traffic and one of each incident.

    Incidents sit at fixed fractions of the period (so a shorter history keeps all of
    them), each sized to trip the matching SLO in slos/chat-assistant.yaml.
    """
    span = days * 86400

    def at(fraction: float) -> int:
        return origin + int(span * fraction) // 60 * 60

    first = Scope(provider=next(iter(_PROVIDER_MODELS)))
    incidents = (
        Incident(at(0.10), at(0.10) + 45 * 60, "error_rate", 0.5, first),
        Incident(at(0.25), at(0.25) + 2 * 3600, "ttft_slowdown", 0.4),
        Incident(at(0.40), at(0.40) + 6 * 3600, "cost_spike", 0.2),
        Incident(at(0.55), at(0.55) + 86400, "quality_drop", 0.2),
        Incident(at(0.70), at(0.70) + 3 * 3600, "guardrail_rejections", 0.05),
        Incident(at(0.80), at(0.80) + 3600, "latency_slowdown", 0.3),
        Incident(at(0.90), at(0.90) + 3600, "zero_traffic"),
    )
    return Scenario(
        origin=origin,
        traffic=Traffic(base_rps=base_rps, peak_to_trough=20, jitter=0.1),
        providers=providers,
        models_per_provider=models_per_provider,
        features=features,
        labels={"service": service},
        incidents=incidents,
        seed=seed,
    )
