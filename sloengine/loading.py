"""Read SLO.yaml files into resolved objectives, or fail with every problem located."""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import pydantic

from sloengine import promql, sli
from sloengine.budget import DEFAULT_POLICY, resolve_policy
from sloengine.conventions import Severity
from sloengine.durations import format_duration
from sloengine.errors import Problem, SpecError
from sloengine.model import Objective, Service
from sloengine.source import Source, read_source
from sloengine.spec import (
    SLI_KINDS,
    SLO,
    Alerting,
    HistogramSLI,
    Pair,
    PresetSLI,
    RatioSLI,
    SLOFile,
    SuccessRateSLI,
)

MIN_PERIOD = 3600

_HINTS = {
    "apiVersion": "the first line of an SLO file is `apiVersion: sloengine/v1`",
    "service": "lowercase letters, digits and _ . - (starting and ending with a letter or digit)",
    "name": "lowercase letters, digits and _ . - (starting and ending with a letter or digit)",
    "objective": "a percentage between 0 and 100, e.g. 99.5",
    "window": "a duration such as 30d, 28d or 7d",
    "evaluation_interval": "a duration from 1s to 5m, such as 1m or 30s",
    "for": "a duration such as 0m or 5m",
    "threshold": "a duration such as 1s or 500ms, or seconds as a number",
    "threshold_usd": "dollars per call as a number, e.g. 0.10",
    "min_score": "a score in (0, 1], e.g. 0.8",
    "budget_usd": "dollars allowed per window, e.g. 30000",
    "preset": "one of llm, otel, vllm, litellm",
    "sli": "exactly one of: " + ", ".join(SLI_KINDS),
    "labels": "a mapping of label names to string values, e.g. team: assistant",
    "annotations": "a mapping of annotation names to string values",
    "slos": "a list of SLOs, each with name, objective and sli",
    "min_events": "a whole number of events, e.g. 100",
    "long_window": "a duration (1h) or a share of the SLO window (window/720)",
    "short_window": "a duration (5m) or a share of the SLO window (window/8640)",
    "policy": "a list of pairs, each with severity, long_window, short_window "
    "and one of budget_percent or burn_rate",
    "metric": "a Prometheus metric name; for a histogram its base name, without _bucket or _count",
    "ratio": "errors (or good) and total, each PromQL with [{{window}}] as the range",
    "total": "PromQL counting all events, e.g. sum(rate(requests_total[{{window}}]))",
    "include": "the llm preset can add validation_errors and guardrail_rejections",
}
_HISTOGRAM_THRESHOLD_HINT = "the bucket bound as a plain number, e.g. 0.5 for the 500ms bucket"
_LABEL_NAME_HINT = "label names are letters, digits and _, not starting with a digit or __"
_LABEL_KEY_TYPE_HINT = "quote it: YAML reads 1, on, yes and true as numbers or booleans"
_RESERVED_LABEL_HINT = (
    "sloengine sets service, slo, severity, window, long_window and short_window; pick another name"
)


def _vocabulary() -> list[str]:
    words: set[str] = set()
    pending: list[Any] = [SLOFile]
    seen: set[Any] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            words.add(info.alias or name)
            for arg in _model_args(info.annotation):
                pending.append(arg)
    return sorted(words)


def _model_args(annotation: Any) -> Iterable[Any]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _model_args(arg)


_WORDS = _vocabulary()


def _problem_from_pydantic(src: Source, base: tuple[str | int, ...], err: Any) -> Problem:
    # Unions add type names (``float``, ``function-before[...]``) to a location: drop them.
    loc = tuple(
        p
        for p in err["loc"]
        if not isinstance(p, str) or p in _WORDS or p in _free_keys(err["loc"])
    )
    path = (*base, *loc)
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    kind = err["type"]
    message = str(err["msg"]).removeprefix("Value error, ")
    if len(path) >= 2 and path[-2] in ("labels", "annotations"):
        on_key = bool(err["loc"]) and err["loc"][-1] == "[key]"
        return _mapping_entry_problem(src, path, on_key, kind, message, err["input"])
    if kind in ("extra_forbidden", "invalid_key"):
        return _unknown_field_problem(src, path)
    if kind == "missing":
        return src.problem(path[:-1], f"missing required field {field!r}", _HINTS.get(field, ""))
    hint = _HINTS.get(field, "")
    if field == "threshold" and "histogram" in path:
        hint = _HISTOGRAM_THRESHOLD_HINT
    if kind == "string_pattern_mismatch":
        noun = "metric name" if field == "metric" else "name"
        message = f"{field}: {err['input']!r} is not a valid {noun}"
    elif kind.startswith("literal_error") and field == "apiVersion":
        message = f"apiVersion: {err['input']!r} is not supported"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"{field}: expected a mapping, got {_describe(err['input'])}"
    else:
        message = f"{field}: {message}" if field and not message.startswith(field) else message
    return src.problem(path, message, hint)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _mapping_entry_problem(
    src: Source, path: tuple[str | int, ...], on_key: bool, kind: str, message: str, value: Any
) -> Problem:
    """A bad entry in labels or annotations: a key users chose (value is then the key)."""
    name, noun = path[-1], str(path[-2]).removesuffix("s")
    if on_key and kind == "string_type":
        return src.problem(
            path, f"{noun} name {value!r} is not a string", _LABEL_KEY_TYPE_HINT, key=True
        )
    if on_key:
        hint = _RESERVED_LABEL_HINT if "set by sloengine" in message else _LABEL_NAME_HINT
        return src.problem(path, message, hint, key=True)
    return src.problem(
        path,
        f"{noun} {name!r}: value {value!r} is not a string",
        f"{noun} values are strings: quote numbers and booleans",
    )


def _unknown_field_problem(src: Source, path: tuple[str | int, ...]) -> Problem:
    field = path[-1]
    allowed = _fields_at(path[:-1])
    close = difflib.get_close_matches(str(field), allowed or _WORDS, n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif path[-2:-1] == ("sli",):
        hint = _HINTS["sli"]
    elif allowed:
        hint = "allowed here: " + ", ".join(allowed)
    else:
        hint = "remove it; see the SLO.yaml reference"
    what = "SLI kind" if path[-2:-1] == ("sli",) else "field"
    return src.problem(path, f"unknown {what} {field!r}", hint, key=True)


def _fields_at(path: tuple[str | int, ...]) -> list[str]:
    """Field names of the model at path (list indexes skipped); empty if none is known."""
    model: Any = SLOFile
    for part in path:
        if isinstance(part, int):
            continue
        info = next((i for n, i in model.model_fields.items() if (i.alias or n) == part), None)
        model = next(iter(_model_args(info.annotation)), None) if info else None
        if model is None:
            return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _free_keys(loc: tuple[Any, ...]) -> set[str]:
    """Keys users choose (label names, unknown fields) that must stay in a location."""
    keys = set()
    for i, part in enumerate(loc):
        if i and loc[i - 1] in ("labels", "annotations"):
            keys.add(part)
    keys.add(loc[-1]) if loc and isinstance(loc[-1], str) and "[" not in loc[-1] and loc[
        -1
    ] not in {"float", "int", "str", "bool", "none", "list", "dict"} else None
    return keys


def _problems(
    src: Source, base: tuple[str | int, ...], exc: pydantic.ValidationError
) -> list[Problem]:
    return [_problem_from_pydantic(src, base, e) for e in exc.errors()]


def _discover(paths: Iterable[str]) -> tuple[list[str], list[Problem]]:
    files: list[str] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in (".yaml", ".yml") and p.is_file() and _looks_like_slo(p)
            )
            if not found:
                problems.append(
                    Problem(
                        raw,
                        1,
                        1,
                        "no SLO files in this directory",
                        "SLO files start with `apiVersion: sloengine/v1`",
                    )
                )
            files += [_display(p) for p in found]
        elif path.is_file():
            files.append(_display(path))
        else:
            problems.append(Problem(raw, 1, 1, "no such file or directory", "check the path"))
    return list(dict.fromkeys(files)), problems


def _looks_like_slo(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return "sloengine/" in head or path.stem.lower() == "slo"


def _display(path: Path) -> str:
    rel = os.path.relpath(path)
    return (rel if not rel.startswith("..") else str(path)).replace(os.sep, "/")


def load_specs(paths: Iterable[str]) -> list[Service]:
    """Load, validate and resolve SLO files; SpecError lists every problem found."""
    files, problems = _discover(paths)
    services: list[Service] = []
    owners: dict[str, str] = {}
    for file in files:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(
                Problem(
                    file,
                    1,
                    1,
                    f"cannot read the file: {exc.__class__.__name__}",
                    "check permissions and encoding (UTF-8)",
                )
            )
            continue
        try:
            service = load_source(read_source(file, text))
        except SpecError as exc:
            problems += exc.problems
            continue
        if service.name in owners:
            src = read_source(file, text)
            problems.append(
                src.problem(
                    ("service",),
                    f"service {service.name!r} is also defined in {owners[service.name]}",
                    "one file per service: merge them or rename one",
                )
            )
            continue
        owners[service.name] = file
        services.append(service)
    if problems:
        raise SpecError(problems)
    return services


def load_source(src: Source) -> Service:
    """Validate one parsed file and resolve its SLOs."""
    if not isinstance(src.data, dict):
        raise SpecError(
            [src.problem((), "an SLO file is a mapping", "start from an example in slos/")]
        )
    try:
        spec = SLOFile.model_validate(src.data)
    except pydantic.ValidationError as exc:
        problems = _problems(src, (), exc)
        problems += _semantic_problems_partial(src)
        raise SpecError(sorted(set(problems))) from None
    problems = _selector_problem(src, ("metrics", "selector"), spec.metrics.selector)
    for index, slo in enumerate(spec.slos):
        problems += _check_slo(src, spec, index, slo)
    problems += _duplicate_names(src, [slo.name for slo in spec.slos])
    if problems:
        # SLOs sharing a file-level setting would each report the same problem with it.
        raise SpecError(list(dict.fromkeys(problems)))
    return Service(
        spec.service,
        src.file,
        tuple(_resolve(src.file, spec, slo) for slo in spec.slos),
        spec.description,
        spec.owner,
    )


def _semantic_problems_partial(src: Source) -> list[Problem]:
    """Checks for the SLOs that are valid on their own while the file as a whole is not."""
    data = src.data
    slos = data.get("slos") if isinstance(data, dict) else None
    if not isinstance(slos, list):
        return []
    problems = _duplicate_names(
        src, [raw.get("name") if isinstance(raw, dict) else None for raw in slos]
    )
    shell = _shell(data)
    if shell is None:
        return problems
    problems += _selector_problem(src, ("metrics", "selector"), shell.metrics.selector)
    for index, raw in enumerate(slos):
        try:
            slo = SLO.model_validate(raw)
        except pydantic.ValidationError:
            continue
        problems += _check_slo(src, shell, index, slo)
    return problems


_STUB_SLO = {"name": "x", "objective": 99, "sli": {"ratio": {"errors": "0", "total": "1"}}}


def _shell(data: dict[Any, Any]) -> SLOFile | None:
    """The file's shared settings with every invalid one left out (each is reported already)."""
    shell = copy.deepcopy(
        {**data, "apiVersion": "sloengine/v1", "service": "x", "slos": [_STUB_SLO]}
    )
    for _ in range(10):
        try:
            return SLOFile.model_validate(shell)
        except pydantic.ValidationError as exc:
            if not any([_drop(shell, err["loc"]) for err in exc.errors()]):
                return None
    return None


def _drop(data: dict[Any, Any], loc: tuple[Any, ...]) -> bool:
    """Remove the deepest mapping entry on the way to loc (a list goes as a whole)."""
    parent: dict[Any, Any] | None = None
    key: Any = None
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            parent, key, node = node, part, node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
    if parent is None or key not in parent:
        return False
    del parent[key]
    return True


def _duplicate_names(src: Source, names: list[Any]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for index, name in enumerate(names):
        if not isinstance(name, str):
            continue
        if name in seen:
            problems.append(
                src.problem(
                    ("slos", index, "name"),
                    f"SLO name {name!r} is used twice in this service",
                    "SLO names are unique per service",
                )
            )
        seen.add(name)
    return problems


def _check_slo(src: Source, spec: SLOFile, index: int, slo: SLO) -> list[Problem]:
    at = ("slos", index)
    problems: list[Problem] = []
    kind = slo.sli.kind
    kind_spec = slo.sli.spec
    here = (*at, "sli", kind)
    if kind == "spend" and slo.objective is not None:
        problems.append(
            src.problem(
                (*at, "objective"),
                "a spend SLO has no objective",
                "its budget is sli.spend.budget_usd; remove objective",
            )
        )
    if kind != "spend" and slo.objective is None:
        problems.append(
            src.problem(at, f"SLO {slo.name!r} needs an objective", _HINTS["objective"])
        )
    preset = spec.metrics.preset
    if isinstance(kind_spec, PresetSLI):
        if sli.catalog_entry(preset, kind) is None and not kind_spec.metric:
            problems.append(
                src.problem(
                    here,
                    f"the {preset} preset has no metric for {kind}",
                    f"set sli.{kind}.metric to your own metric, or use a preset that has one",
                )
            )
        if isinstance(kind_spec, SuccessRateSLI) and kind_spec.include and preset != "llm":
            problems.append(
                src.problem(
                    (*here, "include"),
                    f"include is only available with the llm preset, not {preset}",
                    "count those failures in your request counter's bad matcher instead",
                )
            )
        problems += _selector_problem(src, (*here, "selector"), kind_spec.selector)
    if isinstance(kind_spec, HistogramSLI):
        problems += _selector_problem(src, (*here, "selector"), kind_spec.selector)
    if isinstance(kind_spec, RatioSLI):
        for key in ("errors", "good", "total"):
            expr = getattr(kind_spec, key)
            if expr is not None:
                problems += _ratio_problems(src, (*here, key), expr)
    period = slo.window or spec.window
    window_at = (*at, "window") if slo.window is not None else ("window",)
    problems += _policy_problems(src, at, window_at, slo.policy, spec.policy, period)
    if slo.runbook and not urlparse(slo.runbook).scheme and not spec.runbooks.base_url:
        problems.append(
            src.problem(
                (*at, "runbook"),
                f"runbook {slo.runbook!r} is relative but runbooks.base_url is not set",
                "set runbooks.base_url, or give an absolute URL",
            )
        )
    return problems


def _selector_problem(src: Source, path: tuple[str | int, ...], matchers: str) -> list[Problem]:
    complaint = promql.check_selector(matchers)
    if complaint is None:
        return []
    return [
        src.problem(
            path,
            f"invalid label matchers {matchers!r}: {complaint}",
            'write matchers as in PromQL: service="chat", model=~"gpt-.*"',
        )
    ]


def _ratio_problems(src: Source, path: tuple[str | int, ...], expr: str) -> list[Problem]:
    if not promql.WINDOW_PLACEHOLDER.search(expr):
        return [
            src.problem(
                path,
                "the expression has no {{window}}",
                "write the range as [{{window}}], e.g. rate(x_total[{{window}}])",
            )
        ]
    try:
        node = promql.parse(promql.fill_window(expr, "5m"))
    except ValueError as exc:
        return [
            src.problem(path, f"invalid PromQL: {exc}", "check brackets, quotes and function names")
        ]
    if node.__class__.__name__ in ("NumberLiteral", "StringLiteral"):
        return [
            src.problem(
                path,
                "the expression is a constant",
                "an SLI counts events: use rate() or increase() of a counter",
            )
        ]
    if node.__class__.__name__ in ("MatrixSelector", "SubqueryExpr"):
        return [
            src.problem(
                path,
                "the expression is a range vector, not a rate",
                "wrap it in rate() or increase(), e.g. sum(rate(x_total[{{window}}]))",
            )
        ]
    try:
        # Generated rules sum the expression: it must give an instant vector.
        promql.parse(f"sum({promql.fill_window(expr, '5m')})")
    except ValueError as exc:
        return [
            src.problem(
                path,
                f"the expression does not give an instant vector: {exc}",
                "an SLI counts events: use rate() or increase() of a counter",
            )
        ]
    return []


def _policy_problems(
    src: Source,
    at: tuple[str | int, ...],
    window_at: tuple[str | int, ...],
    own: list[Pair] | None,
    shared: list[Pair] | None,
    period: float,
) -> list[Problem]:
    problems = []
    if period < MIN_PERIOD:
        spelled = format_duration(period) if period == round(period) else f"{period:g}s"
        problems.append(
            src.problem(window_at, f"the SLO window {spelled} is shorter than 1h", _HINTS["window"])
        )
        return problems
    pairs, base = (own, (*at, "policy")) if own is not None else (shared, ("policy",))
    for i, pair in enumerate(pairs or []):
        windows = resolve_policy([pair], period)[0]
        if windows.short_seconds > windows.long_seconds:
            problems.append(
                src.problem(
                    (*base, i, "short_window"),
                    "the short window is longer than the long window",
                    "the short window confirms the long one is still burning: make it about 1/12 of the long window",
                )
            )
        if windows.long_seconds > period:
            problems.append(
                src.problem(
                    (*base, i, "long_window"),
                    "the long window is longer than the SLO window",
                    "use a window no longer than the SLO window",
                )
            )
    return problems


def _merge_alerting(shared: Alerting, own: Alerting | None) -> Alerting:
    if own is None:
        return shared
    values = shared.model_dump(by_alias=True)
    for name in own.model_fields_set:
        value = getattr(own, name)
        if name in ("labels", "annotations"):
            values[name] = {**values[name], **value}
        else:
            values[name] = (
                value.model_dump(by_alias=True) if isinstance(value, pydantic.BaseModel) else value
            )
    return Alerting.model_validate(values)


def _resolve(file: str, spec: SLOFile, slo: SLO) -> Objective:
    period = round(slo.window or spec.window)
    alerting = _merge_alerting(spec.alerting, slo.alerting)
    policy = slo.policy or spec.policy or list(DEFAULT_POLICY)
    kind = slo.sli.kind
    objective = None if slo.objective is None else round(slo.objective / 100, 12)
    runbook_url = None
    if slo.runbook:
        base = spec.runbooks.base_url or ""
        runbook_url = (
            urljoin(base if base.endswith("/") else base + "/", slo.runbook)
            if base
            else slo.runbook
        )
    channels = {
        severity: route.slack_channel
        for severity, route in (
            (Severity.PAGE, spec.notify.page),
            (Severity.TICKET, spec.notify.ticket),
        )
        if route is not None and route.slack_channel
    }
    return Objective(
        service=spec.service,
        name=slo.name,
        file=file,
        kind=kind,
        sli=slo.sli,
        preset=spec.metrics.preset,
        period=period,
        interval=round(spec.evaluation_interval),
        objective=objective,
        error_budget=1.0 if objective is None else round(1 - objective, 12),
        budget_usd=slo.sli.spend.budget_usd if slo.sli.spend else None,
        windows=tuple(resolve_policy(policy, period)),
        enabled={Severity.PAGE: alerting.page.enabled, Severity.TICKET: alerting.ticket.enabled},
        for_seconds={
            Severity.PAGE: round(alerting.page.for_),
            Severity.TICKET: round(alerting.ticket.for_),
        },
        min_events=alerting.min_events,
        min_bad_events=alerting.min_bad_events,
        labels={**spec.labels, **alerting.labels},
        annotations=dict(alerting.annotations),
        runbook_url=runbook_url,
        description=slo.description,
        owner=spec.owner,
        channels=channels,
        file_selector=spec.metrics.selector,
    )
