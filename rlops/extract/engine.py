"""DuckDB at the edge: the connection, where the logs are, how they are scanned and how outputs are written.

Logs are scanned by DuckDB's own newline-delimited JSON reader (parallel, typed columns, bounded memory);
`ignore_errors` turns a line that is not a JSON object into a row of NULLs. The reader skips lines that hold
only whitespace and gives every other line exactly one row, so a row's ordinal identifies its line; `locate`
maps ordinals back to (file, line, text) for the few rows that are quarantined, reading the files once more in
Python only up to the last such row.
"""

from __future__ import annotations

import contextlib
import gzip
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlops.errors import StageFailed

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)
BLANK = b" \t\r\x0b\x0c\n"  # lines made only of these give no row (DuckDB's reader skips them too)
MAX_LINE_BYTES = 64 * 1024 * 1024  # longer lines are not read as records


@dataclass(frozen=True)
class Source:
    """The files one `data.*` setting names, sorted; `displays` are their paths relative to the root."""

    setting: str
    files: tuple[Path, ...]
    displays: tuple[str, ...]
    format: str  # json | parquet

    def sql_list(self) -> str:
        return "[" + ", ".join(quote(str(f)) for f in self.files) + "]"


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _suffix_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSON_SUFFIXES):
        return "json"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def resolve(root: Path, setting: str, field: str) -> Source:
    """The files a file, folder (searched recursively) or glob such as `logs/**/*.jsonl` names."""
    root = Path(root)
    if any(c in setting for c in "*?["):
        found = [p for p in root.glob(setting) if p.is_file()]
        if not found:
            raise StageFailed(f"{setting}: no file matches ({field})", hint=f"check {field} in the cycle spec")
    elif (root / setting).is_dir():
        found = [p for p in (root / setting).rglob("*") if p.is_file() and _suffix_format(p)
                 and not any(part.startswith(".") for part in p.relative_to(root / setting).parts)]
        if not found:
            raise StageFailed(f"{setting}: no .jsonl or .parquet file in this folder ({field})",
                              hint=f"check {field} in the cycle spec")
    elif (root / setting).is_file():
        found = [root / setting]
    else:
        raise StageFailed(f"{setting}: no such file", hint=f"check {field} in the cycle spec")
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    formats = {_suffix_format(p) or "json" for p in found}
    if len(formats) > 1:
        raise StageFailed(f"{setting}: mixes JSONL and Parquet files ({field})",
                          hint="point each data.* setting at files of one format")
    displays = tuple(p.relative_to(root).as_posix() for p in found)
    return Source(setting, tuple(found), displays, formats.pop())


def connect(memory_limit: str, threads: int | None, scratch: Path) -> Any:
    """An in-memory DuckDB database kept within `memory_limit`: beyond it, its tables and intermediate results
    spill to `scratch`. (A database file, thrown away at the end anyway, made the stage about 1.4 s slower at a
    million interactions: benchmarks/RESULTS.md.)"""
    import duckdb

    config = {"memory_limit": memory_limit, "temp_directory": str(scratch / "spill"), "preserve_insertion_order": True}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")
    return con


@contextlib.contextmanager
def scratch_dir(near: Path) -> Iterator[Path]:
    """A temporary folder beside the outputs for DuckDB to spill into; removed afterwards."""
    near.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".extract-scratch-", dir=near) as tmp:
        yield Path(tmp)


def json_reader(source: Source, columns: dict[str, str]) -> str:
    """SQL for scanning `source` as newline-delimited JSON with these typed columns, plus `filename`."""
    cols = ", ".join(f"{quote(name)}: {quote(kind)}" for name, kind in columns.items())
    return (f"read_json({source.sql_list()}, format='newline_delimited', records='true', ignore_errors=true, "
            f"filename=true, maximum_object_size={MAX_LINE_BYTES}, columns={{{cols}}})")


def parquet_reader(con: Any, source: Source, columns: dict[str, str]) -> str:
    """SQL for scanning Parquet files into the same columns as `json_reader` (nested values as JSON text)."""
    reader = f"read_parquet({source.sql_list()}, union_by_name=true, filename=true)"
    present = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
    parts = []
    for name, kind in columns.items():
        col = '"' + name.replace('"', '""') + '"'
        if name not in present:
            parts.append(f"NULL::{kind} AS {col}")
        elif present[name] == "TIMESTAMP WITH TIME ZONE":  # RFC 3339 text, as in a JSON log (the session is UTC)
            parts.append(f"strftime({col}, '%Y-%m-%dT%H:%M:%S.%fZ') AS {col}")
        elif kind == "JSON":
            parts.append(f"to_json({col}) AS {col}")
        else:
            parts.append(f"TRY_CAST({col} AS {kind}) AS {col}")
    return f"(SELECT {', '.join(parts)}, filename FROM {reader})"


def reader(con: Any, source: Source, columns: dict[str, str]) -> str:
    return json_reader(source, columns) if source.format == "json" else parquet_reader(con, source, columns)


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def locate(source: Source, rows_per_file: Sequence[int], wanted: Sequence[int]) -> dict[int, tuple[str, int, str]]:
    """For each wanted row ordinal (1-based, over the files in order): (file, line number, line text).

    Parquet rows are numbered by row; JSON rows by the reader's rule (blank lines give no row)."""
    out: dict[int, tuple[str, int, str]] = {}
    todo = sorted(set(wanted))
    if not todo:
        return out
    start = 0  # ordinal of the first row of the current file, minus one
    i = 0
    for path, display, count in zip(source.files, source.displays, rows_per_file):
        end = start + count
        if i < len(todo) and todo[i] <= end and source.format == "parquet":
            while i < len(todo) and todo[i] <= end:
                out[todo[i]] = (display, todo[i] - start, "")
                i += 1
        elif i < len(todo) and todo[i] <= end:
            k = start
            with _open(path) as lines:
                for number, raw in enumerate(lines, start=1):
                    if len(raw) < 64 and not raw.strip(BLANK):  # a record line is longer: skip the test
                        continue
                    k += 1
                    if k == todo[i]:
                        out[k] = (display, number, raw.rstrip(b"\r\n").decode("utf-8", errors="replace"))
                        i += 1
                        if i == len(todo) or todo[i] > end:
                            break
        start = end
        if i == len(todo):
            break
    if i < len(todo):
        raise StageFailed(f"{source.setting}: DuckDB read rows that the files do not have (row {todo[i]}); "
                          "this is a bug in rlops, please report it")
    return out


def copy_lines(con: Any, query: str, path: Path) -> None:
    """Write one text column of `query`, in its order, as the lines of `path`, atomically."""
    _copy(con, f"COPY ({query}) TO {{tmp}} (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1f')", path)


def copy_parquet(con: Any, query: str, path: Path) -> None:
    _copy(con, f"COPY ({query}) TO {{tmp}} (FORMAT parquet, COMPRESSION zstd)", path)


def _copy(con: Any, statement: str, path: Path) -> None:
    from rlops.io import atomic_path

    with atomic_path(path) as tmp:
        con.execute(statement.replace("{tmp}", quote(str(tmp))))
