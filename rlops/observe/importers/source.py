"""Read an import's input: a file or a folder of .json / .jsonl files, record by record, with each record's place.

A JSONL file yields one record per non-blank line; a JSON file yields each element of a top-level array, or the
top-level object itself. A line or document that is not JSON is reported to `bad(where, reason)` (the caller
quarantines it) and reading goes on with the next line (a broken JSON document ends that file). So is a record
nested deeper than MAX_DEPTH: no log record needs that, and deeper ones exhaust Python's stack (in the decoder or
in the importer after it), so it is refused before either runs; an array element that deep is skipped over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import accumulate
from pathlib import Path
from typing import Any

SUFFIXES = (".jsonl", ".ndjson", ".json")
MAX_DEPTH = 200  # levels of nested arrays and objects a record may have
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_OPENS = re.compile(r"[\[{]{%d}" % (MAX_DEPTH + 1))  # the usual shape of a bomb, found without counting
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


@dataclass(frozen=True)
class Where:
    """Where a record came from: file (as the user named it), line, and a path inside the record."""

    file: str
    line: int | None
    path: str = ""
    name: str = ""  # the file's name relative to the import's PATH: stable input for derived ids

    def at(self, path: str) -> Where:
        joined = f"{self.path}.{path}" if self.path and not path.startswith("[") else self.path + path
        return replace(self, path=joined)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "line": self.line}
        if self.path:
            out["path"] = self.path
        return out

    def __str__(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{place} ({self.path})" if self.path else place


def input_files(source: Path, exclude: Path | None = None) -> list[tuple[Path, str, str]]:
    """(path, display, name) of every input file: `source` itself, or the JSON(L) files under it, sorted
    (hidden ones and those under `exclude`, the import's own output folder, left out)."""
    if source.is_file():
        return [(source, str(source), source.name)]
    skip = exclude.resolve() if exclude is not None else None
    found = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(source).parts)
                   and not (skip is not None and p.resolve().is_relative_to(skip)))
    return [(p, str(p), p.relative_to(source).as_posix()) for p in found]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def loads(text: str) -> Any:
    """json.loads that refuses NaN and Infinity (they are not JSON, and no schema accepts them) and records nested
    deeper than MAX_DEPTH (ValueError)."""
    _check_depth(text)
    return _DECODER.decode(text)


def too_deep(text: str) -> str | None:
    """The reason to refuse `text` when its arrays and objects nest deeper than MAX_DEPTH, else None."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # the common case, at C speed
        return None
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if _OPENS.search(brackets) is None and max(accumulate(1 if c in "[{" else -1 for c in brackets)) <= MAX_DEPTH:
        return None
    return f"nested more than {MAX_DEPTH} levels deep (arrays and objects); no log record needs that"


class TooDeep(ValueError):
    """A record nested deeper than MAX_DEPTH; the message is the reason."""


def _check_depth(text: str) -> None:
    reason = too_deep(text)
    if reason:
        raise TooDeep(reason)


def _end_of_value(text: str, pos: int) -> int:
    """Where the array or object starting at `pos` ends (past its closing bracket), or len(text)."""
    depth = 0
    for m in _TOKEN.finditer(text, pos):
        token = m.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            depth -= 1
            if depth == 0:
                return m.end()
    return len(text)


def _json_error(e: Exception, one_line: bool = False) -> str:
    if isinstance(e, TooDeep):
        return str(e)
    if isinstance(e, json.JSONDecodeError):
        return f"not JSON: {e.msg} (column {e.colno})" if one_line else \
            f"not JSON: {e.msg} (line {e.lineno}, column {e.colno})"
    return f"not JSON: {e}"


def records(path: Path, display: str, name: str, bad: Callable[[Where, str], None]) -> Iterator[tuple[Where, Any]]:
    """Every record of one file with its place; unreadable lines or documents go to `bad`."""
    if path.suffix == ".json":
        yield from _document(path, display, name, bad)
        return
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            where = Where(display, number, "", name)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad(where, f"not UTF-8: byte {e.start}")
                continue
            if not text.strip():
                continue
            try:
                obj = loads(text.rstrip("\r\n"))
            except ValueError as e:
                bad(where, _json_error(e, one_line=True))
                continue
            yield where, obj


def _document(path: Path, display: str, name: str, bad: Callable[[Where, str], None]) -> Iterator[tuple[Where, Any]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        bad(Where(display, None, "", name), f"not UTF-8: byte {e.start}")
        return
    start = _skip_ws(text, 0)
    if start >= len(text):
        return
    if text[start] != "[":
        try:
            _check_depth(text)
            obj, end = _DECODER.raw_decode(text, start)
            if _skip_ws(text, end) != len(text):
                raise json.JSONDecodeError("extra data after the document", text, _skip_ws(text, end))
        except ValueError as e:
            bad(Where(display, getattr(e, "lineno", None), "", name), _json_error(e))
            return
        yield Where(display, _line_of(text, start), "", name), obj
        return
    # a top-level array: decode element by element, so each one keeps its own line number
    pos, index, line, counted = start + 1, 0, 1, 0
    while True:
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == "]" and index == 0:
            return
        line += text.count("\n", counted, pos)
        counted = pos
        where = Where(display, line, f"[{index}]", name)
        begin = pos
        try:
            obj, pos = _DECODER.raw_decode(text, pos)
            reason = too_deep(text[begin:pos])
        except RecursionError:
            pos = _end_of_value(text, begin)
            reason = too_deep(text[begin:pos]) or f"nested too deeply to read (more than {MAX_DEPTH} levels)"
        except ValueError as e:
            bad(where, _json_error(e) + "; the rest of this file was not read")
            return
        if reason:  # skipped over: the elements after it are still read
            bad(where, reason)
        else:
            yield where, obj
        index += 1
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "]":
            return
        else:
            bad(Where(display, _line_of(text, pos), f"[{index}]", name),
                "not JSON: expected ',' or ']' between array elements; the rest of this file was not read")
            return


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n\ufeff":
        pos += 1
    return pos


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1
