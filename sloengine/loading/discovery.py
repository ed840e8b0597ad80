"""Which files are SLO files: the paths given, and the SLO files under each directory.

A path given by name is always loaded. Under a directory, a ``.yaml``/``.yml`` file
(any case) is an SLO file when it is named ``SLO.yaml``, or when its text anywhere
mentions ``apiVersion``, ``sloengine`` or an ``slos`` key (so a typo in ``apiVersion``
or a long comment header still gets the file reported rather than skipped), or when it
cannot be read or decoded. Only rule files sloengine generated itself are left out.
An SLO file that is invalid, unreadable or too large is reported, never skipped, and
so is a directory that cannot be listed.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from sloengine.errors import Problem
from sloengine.output import GENERATED_MARK
from sloengine.yamldoc import MAX_CHARS

_SUFFIXES = (".yaml", ".yml")
_SLO_WORDS = re.compile(r"apiversion|sloengine|(?:^|[\s{,'\"])slos['\"]?\s*:", re.IGNORECASE)
# A generated rule file has no SLO keys at the start of a line.
_SLO_KEYS = re.compile(r"^['\"]?(?:apiVersion|slos)['\"]?\s*:", re.MULTILINE)


def discover(paths: Iterable[str]) -> tuple[list[str], list[Problem]]:
    """The SLO files to load, each once, and a Problem for each path that names none."""
    files: list[str] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates, unlisted = _yaml_files(path)
            problems += [
                Problem(
                    _display(d), 1, 1, f"cannot list the directory: {why}", "check its permissions"
                )
                for d, why in unlisted
            ]
            # Opening a FIFO or a device can block for ever: name it instead.
            odd = [p for p in candidates if _exists(p) and not _regular(p)]
            problems += [
                Problem(
                    _display(p),
                    1,
                    1,
                    "cannot read the file: it is not a regular file",
                    "an SLO file is a plain file; remove it or rename it",
                )
                for p in odd
            ]
            found = [p for p in candidates if p not in odd and _looks_like_slo(p)]
            if not found and not unlisted and not odd:
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
        elif path.is_symlink() or os.path.lexists(path):
            # A dangling link or a socket: loading it reports why it cannot be read.
            files.append(_display(path))
        else:
            problems.append(Problem(raw, 1, 1, "no such file or directory", "check the path"))
    return list(dict.fromkeys(files)), problems


def _yaml_files(root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every YAML file under root (links to files included), and directories not listable."""
    unlisted: list[tuple[Path, str]] = []

    def _unlisted(exc: OSError) -> None:
        unlisted.append((Path(exc.filename or root), exc.strerror or exc.__class__.__name__))

    found: list[Path] = []
    # Linked directories are followed (teams link shared SLOs in), each real one once.
    seen = {os.path.realpath(root)}
    for folder, dirs, names in os.walk(root, onerror=_unlisted, followlinks=True):
        fresh = []
        for name in sorted(dirs):
            real = os.path.realpath(os.path.join(folder, name))
            if real not in seen:
                seen.add(real)
                fresh.append(name)
        dirs[:] = fresh
        found += [
            Path(folder) / name
            for name in names
            if name.lower().endswith(_SUFFIXES) and not (Path(folder) / name).is_dir()
        ]
    return sorted(found), unlisted


def _exists(path: Path) -> bool:
    try:
        path.stat()
    except OSError:
        return False  # a dangling link: loading reports it
    return True


def _regular(path: Path) -> bool:
    return stat.S_ISREG(path.stat().st_mode)


def _looks_like_slo(path: Path) -> bool:
    if path.stem.lower() == "slo":
        return True
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_CHARS * 4 + 1)
    except OSError:
        return True  # loading reports why it cannot be read
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return True  # loading reports the line of the bad byte
    if text.startswith(GENERATED_MARK) and not _SLO_KEYS.search(text):
        return False
    return bool(_SLO_WORDS.search(text))


def _display(path: Path) -> str:
    rel = os.path.relpath(path)
    return (rel if not rel.startswith("..") else str(path)).replace(os.sep, "/")
