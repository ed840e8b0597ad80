"""Which files are SLO files: the paths given, and the SLO files under each directory."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sloengine.errors import Problem


def discover(paths: Iterable[str]) -> tuple[list[str], list[Problem]]:
    """The SLO files to load, each once, and a Problem for each path that names none."""
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
