"""Append interactions and feedback from a running agent: thread-safe, crash-safe, rotating and idempotent.

    with Recorder("logs") as rec:
        iid = rec.record_interaction({"agent": {...}, "input_messages": [...], "output_messages": [...]})
        rec.record_feedback({"interaction_id": iid, "actor": "customer:42", "kind": "rating", ...})

Every record is one line written with a single `os.write` to a file opened with O_APPEND, and `record_*`
returns only after that write (and the fsync, when enabled). A line counts only with its newline: a process
killed mid-write leaves at most one torn final line, which readers skip and the next Recorder moves to a
`.torn` file beside the part before it writes. Files rotate by size or age into
DIR/<stream>/date=YYYY-MM-DD/part-NNNNNN.jsonl, whose paths sort in write order. Imports stdlib and
jsonschema only. The format and the guarantees are documented in docs/records.md.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import functools
import importlib.resources
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from rlops import records
from rlops.errors import InvalidInput, Problem, RlopsError
from rlops.io import fsync_dir
from rlops.observe import CURRENT, migrate

try:
    import fcntl
except ImportError:  # not POSIX: no guard against two recorders on one directory
    fcntl = None  # type: ignore[assignment]

ROTATE_BYTES = 64 * 1024 * 1024
ROTATE_SECONDS = 3600.0
DEDUPE_WINDOW = 100_000  # keys remembered per stream; a retry of an older record is written again
STREAMS = {"interactions": ("interaction", "interaction_id"), "feedback": ("feedback", "event_id")}
LOCK_FILE = "recorder.lock"
_PART = re.compile(r"part-([0-9]+)\.jsonl\Z")
_DATE_DIR = re.compile(r"date=([0-9]{4}-[0-9]{2}-[0-9]{2})\Z")


# -- reading ---------------------------------------------------------------------------------------------------


def record_files(directory: str | os.PathLike, stream: str) -> list[Path]:
    """The part files of `stream` ("interactions" or "feedback") under `directory`, in write order."""
    found = []
    for path in (Path(directory) / stream).glob("date=*/part-*.jsonl"):
        date, part = _DATE_DIR.match(path.parent.name), _PART.match(path.name)
        if date and part:
            found.append((date.group(1), int(part.group(1)), path))
    return [path for _, _, path in sorted(found)]


def _complete_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every line that ends with a newline; a torn final line is skipped."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if raw.endswith(b"\n"):
                yield number, raw


def read_records(directory: str | os.PathLike, stream: str) -> Iterator[dict]:
    """Every record of `stream` in write order, migrated to the current version; torn final lines are skipped."""
    for path in record_files(directory, stream):
        for number, raw in _complete_lines(path):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as e:
                raise InvalidInput([Problem(str(path), number, "", f"not JSON: {e}")],
                                   hint="the recorder never writes such a line; was the file edited by hand?") from None
            try:
                record = migrate(record, stream)
            except InvalidInput as e:
                raise InvalidInput([Problem(str(path), number, p.field, p.message) for p in e.problems],
                                   e.hint) from None
            yield record


# -- validation ------------------------------------------------------------------------------------------------


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    text = (importlib.resources.files("rlops.spec") / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    return Draft202012Validator(json.loads(text), format_checker=records.format_checker())  # compiled once per process


def _field(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _explain(error: ValidationError) -> list[tuple[str, str]]:
    """(field, message) for one schema error, naming the missing or offending key."""
    where, kind, value, expected = list(error.absolute_path), error.validator, error.instance, error.validator_value
    if kind == "required" and isinstance(value, dict):
        why = f" ({error.schema['description']})" if "then" in error.relative_schema_path else ""
        return [(_field(where + [k]), f"missing required key {k!r}{why}") for k in expected if k not in value]
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(error.schema.get("properties", {}))
        return [(_field(where + [k]), f"unknown key {k!r}; allowed keys: {', '.join(allowed)}")
                for k in value if k not in allowed]
    if kind == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        return [(_field(where), f"expected {wanted}, got {json.dumps(value)[:60]}")]
    if kind in ("format", "pattern") and error.schema.get("format") == "date-time":  # records' rule, one message
        return [(_field(where), f"{records.timestamp_problem(value)}, or leave it out to get the current time")]
    if kind == "enum":
        why = f" ({error.schema['description']})" if "then" in error.relative_schema_path else ""
        return [(_field(where), f"{value!r} is not allowed; use one of: {', '.join(map(str, expected))}{why}")]
    return [(_field(where), error.message)]


def _problems(record: Any, name: str) -> list[Problem]:
    label = f"{name} record"
    if not isinstance(record, dict):
        return [Problem(label, None, "", f"expected a JSON object (a dict), got {type(record).__name__}")]
    found = {(field, message): None
             for error in _validator(name).iter_errors(record) for field, message in _explain(error)}
    return [Problem(label, None, field, message) for field, message in found]  # in order, each once


def problems(record: Any, name: str) -> list[Problem]:
    """Every way `record` breaks the v1 schema `name` ("interaction" or "feedback"), each naming its field."""
    return _problems(record, name)


def _not_json(value: Any, path: tuple = ()) -> str | None:
    """The field path of the first value json cannot write (a datetime, a set, NaN), or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return _field(path + (key,))
            found = _not_json(item, path + (key,))
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        return next((f for i, item in enumerate(value) if (f := _not_json(item, path + (i,))) is not None), None)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return _field(path)
    return None if value is None or isinstance(value, (str, int, float, bool)) else _field(path)


# -- one stream of part files ----------------------------------------------------------------------------------


class _Stream:
    """The part files of one stream: the open part, rotation, torn-tail repair and the remembered keys."""

    def __init__(self, root: Path, name: str, recorder: Recorder):
        self.dir, self.name, self.rec = root / name, name, recorder
        self.fd: int | None = None
        self.path: Path | None = None
        self.size = 0
        self.opened_at = 0.0
        self.date = ""  # partition of the newest part; never goes back, so paths keep sorting in write order
        self.seq = 0
        self.keys: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.repaired: list[Path] = []
        files = record_files(root, name)
        for path in files:
            if self._repair(path):
                self.repaired.append(path)
        if files:
            self.date = _DATE_DIR.match(files[-1].parent.name).group(1)  # type: ignore[union-attr]
            self.seq = max(int(_PART.match(p.name).group(1)) for p in files)  # type: ignore[union-attr]
        self._remember_existing(files)

    def _repair(self, path: Path) -> bool:
        """Move a torn final line (no newline: never acknowledged) to PART.torn; True when there was one."""
        with open(path, "rb+") as f:
            end = f.seek(0, os.SEEK_END)
            if end == 0:
                return False
            f.seek(end - 1)
            if f.read(1) == b"\n":
                return False
            cut = end
            while cut > 0:  # back to the byte after the last newline
                start = max(0, cut - 65536)
                f.seek(start)
                block = f.read(cut - start)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    cut = start + newline + 1
                    break
                cut = start
            f.seek(cut)
            torn = f.read()
            # quarantine first, then truncate: a crash in between leaves a duplicate in .torn, never a loss
            quarantine = os.open(path.with_name(path.name + ".torn"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                _write_all(quarantine, torn + b"\n")
                os.fsync(quarantine)
            finally:
                os.close(quarantine)
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        return True

    def _remember_existing(self, files: list[Path]) -> None:
        """Rebuild the keys from the newest records (at most the dedupe window), oldest first."""
        window = self.rec.dedupe_window
        if window <= 0:
            return
        chosen: list[Path] = []
        lines = 0
        for path in reversed(files):  # newest first, until the window is covered
            chosen.append(path)
            with open(path, "rb") as f:
                lines += sum(block.count(b"\n") for block in iter(functools.partial(f.read, 1 << 20), b""))
            if lines >= window:
                break
        for path in reversed(chosen):
            for _, raw in _complete_lines(path):
                found = _stored_key(self.name, raw)
                if found is not None:
                    self.remember(*found)

    def remember(self, key: str, rid: str) -> None:
        self.keys[key] = rid
        if len(self.keys) > self.rec.dedupe_window:
            self.keys.popitem(last=False)

    def append(self, line: bytes) -> None:
        """Write one complete line; on any error the file is cut back to before it and the part closed."""
        offset = 0
        try:
            self._rotate_if_due(len(line))
            assert self.fd is not None
            offset = self.size
            _write_all(self.fd, line)
            if self.rec.fsync:
                os.fsync(self.fd)
        except OSError as e:
            path = self.path or self.dir
            if self.fd is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, offset)  # so the next record never lands on a torn line
                self.close()
            raise RlopsError(f"{path}: the record was not written: {e.strerror or e}",
                             hint="check free space and permissions of the log directory; retry with the same "
                                  "idempotency key") from e
        self.size = offset + len(line)

    def _rotate_if_due(self, incoming: int) -> None:
        now = self.rec.clock()
        today = dt.datetime.fromtimestamp(now, dt.timezone.utc).date().isoformat()
        if self.fd is not None:
            full = self.rec.rotate_bytes is not None and self.size > 0 and self.size + incoming > self.rec.rotate_bytes
            old = self.rec.rotate_seconds is not None and now - self.opened_at >= self.rec.rotate_seconds
            if full or old or today > self.date:
                self.close()
        if self.fd is None:
            self._open_next(now, max(today, self.date))

    def _open_next(self, now: float, date: str) -> None:
        folder = self.dir / f"date={date}"
        new_folder = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            self.seq += 1
            path = folder / f"part-{self.seq:06d}.jsonl"
            try:
                self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                break
            except FileExistsError:
                continue  # written by someone else since we looked; never append to a file we did not start
        if self.rec.fsync:  # the new file's (and folder's) entry must survive a power cut too
            fsync_dir(folder)
            if new_folder:
                fsync_dir(self.dir)
                fsync_dir(self.dir.parent)
        self.path, self.size, self.opened_at, self.date = path, 0, now, date

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd, self.path, self.size = None, None, 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # a regular file takes it in one write; loop only for the rare short write
        view = view[os.write(fd, view):]


def _key(stream: str, record: dict) -> Any:
    if stream == "feedback":
        return record.get("idempotency_key") or record.get("event_id")
    return record.get("interaction_id")


# the start of a line as Recorder writes it: schema, id, then (feedback) idempotency_key; no JSON parse needed
_ID = b'"(' + records.ID_PATTERN.strip("^$").encode() + b')"'
_LINE_START = {
    stream: re.compile(b'\\{"schema":' + re.escape(json.dumps(records.SCHEMAS[name]).encode()) + b","
                       + re.escape(json.dumps(records.ID_FIELDS[name]).encode()) + b":" + _ID
                       + (rb'(?:,"idempotency_key":"([^"\\]+)")?' if stream == "feedback" else b"") + b"[,}]")
    for stream, (name, _) in STREAMS.items()
}


def _stored_key(stream: str, raw: bytes) -> tuple[str, str] | None:
    """(dedupe key, id) of a stored line; the regex fast path reads 100 000 lines in a fraction of json's time."""
    match = _LINE_START[stream].match(raw)
    if match and (stream == "interactions" or raw.count(b'"idempotency_key"') == (match.group(2) is not None)):
        rid = match.group(1).decode()
        key = match.group(2).decode() if stream == "feedback" and match.group(2) is not None else rid
        return key, rid
    try:  # written by someone else, or a key with escapes: parse it
        record = json.loads(raw)
    except ValueError:
        return None  # not ours to judge here; readers quarantine it
    if not isinstance(record, dict):
        return None
    key, rid = _key(stream, record), record.get(STREAMS[stream][1])
    return (key, rid) if isinstance(key, str) and isinstance(rid, str) else None


def _now(clock: Callable[[], float]) -> str:
    stamp = dt.datetime.fromtimestamp(clock(), dt.timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


# -- the recorder ----------------------------------------------------------------------------------------------


class Recorder:
    """Appends interaction and feedback records under `directory`; one Recorder per directory at a time.

    rotate_bytes / rotate_seconds: start a new part when the next line would pass this size, or the part is
    this old (None: never); a new UTC day always starts a new part. fsync: acknowledge only after the data is
    on disk (survives power loss; without it, a killed process still loses nothing acknowledged).
    validate: check each record against the v1 JSON Schema. dedupe_window: how many recent keys per stream
    are remembered to recognise retries. clock: seconds since the epoch (tests inject one)."""

    def __init__(self, directory: str | os.PathLike, *, rotate_bytes: int | None = ROTATE_BYTES,
                 rotate_seconds: float | None = ROTATE_SECONDS, fsync: bool = True, validate: bool = True,
                 dedupe_window: int = DEDUPE_WINDOW, clock: Callable[[], float] = time.time):
        for name, value in (("rotate_bytes", rotate_bytes), ("rotate_seconds", rotate_seconds)):
            if value is not None and not value > 0:
                raise InvalidInput([Problem("Recorder", None, name, f"{value!r} must be positive (or None: never)")])
        if dedupe_window < 0:
            raise InvalidInput([Problem("Recorder", None, "dedupe_window", f"{dedupe_window} must be 0 (no "
                                        "deduplication) or more")])
        self.root = Path(directory)
        self.rotate_bytes, self.rotate_seconds = rotate_bytes, rotate_seconds
        self.fsync, self.validate, self.dedupe_window, self.clock = fsync, validate, dedupe_window, clock
        self._lock = threading.Lock()
        self._closed = True
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_directory(self.root)
        try:
            self._streams = {name: _Stream(self.root, name, self) for name in STREAMS}
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._closed = False

    @property
    def repaired(self) -> list[Path]:
        """Part files whose torn final line was moved to a .torn file when this Recorder opened."""
        return [p for s in self._streams.values() for p in s.repaired]

    def record_interaction(self, record: dict) -> str:
        """Append an interaction; returns its interaction_id (made when missing, or the original on a retry)."""
        return self._record("interactions", record)

    def record_feedback(self, record: dict) -> str:
        """Append a feedback event; returns its event_id (the original one when idempotency_key repeats)."""
        return self._record("feedback", record)

    def sync(self) -> None:
        """Flush the open part files (and their folders) to disk: a group commit for a caller that opened the
        Recorder with fsync=False and writes in batches (rlops serve's log writer)."""
        with self._lock:
            for s in self._streams.values():
                if s.fd is not None and s.path is not None:
                    os.fsync(s.fd)
                    fsync_dir(s.path.parent)

    def recorded_id(self, stream: str, key: str) -> str | None:
        """The id written under dedupe `key` in `stream` (a feedback idempotency key, an interaction id), or None."""
        with self._lock:
            return self._streams[stream].keys.get(key)

    def _record(self, stream: str, record: dict) -> str:
        name, id_field = STREAMS[stream]
        if not isinstance(record, dict):
            raise InvalidInput(_problems(record, name))
        key = _key(stream, record)  # only what the caller chose can repeat; a made-up id never does
        # every line starts schema, id (, idempotency_key), timestamp: see _stored_key; the caller's values win
        filled = {"schema": CURRENT[stream], id_field: record.get(id_field) or uuid.uuid4().hex}
        if "idempotency_key" in record:
            filled["idempotency_key"] = record["idempotency_key"]
        filled["timestamp"] = record.get("timestamp") or _now(self.clock)
        filled.update(record)
        bad = _not_json(filled)
        if bad is not None:
            raise InvalidInput([Problem(f"{name} record", None, bad, "not a JSON value (str, int, float, bool, None, "
                                        "list or dict with str keys; NaN and infinity are not JSON)")])
        line = json.dumps(filled, ensure_ascii=False, separators=(",", ":")) + "\n"
        if self.validate:
            problems = _problems(json.loads(line), name)  # check what will be on disk (tuples are lists there)
            if problems:
                raise InvalidInput(problems, hint=f"see rlops/spec/schemas/{name}.schema.json and docs/records.md")
        try:
            data = line.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate such as "\ud800" has no UTF-8 form
            raise InvalidInput([Problem(f"{name} record", None, "", f"text that is not valid Unicode: {e.reason} "
                                        f"near {line[max(0, e.start - 20):e.start]!r}")]) from None
        target = self._streams[stream]
        with self._lock:
            if self._closed:
                raise RlopsError(f"this Recorder on {self.root} is closed", hint="open a new Recorder")
            if isinstance(key, str) and key in target.keys:
                return target.keys[key]  # a retry: already written, acknowledge it again
            target.append(data)
            rid = filled[id_field]
            target.remember(key if isinstance(key, str) else rid, rid)
            return rid

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for s in self._streams.values():
                s.close()
            os.close(self._lock_fd)  # releases the directory lock

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_directory(root: Path) -> int:
    """An exclusive lock on root/recorder.lock, held while the Recorder is open (the kernel drops it on death)."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RlopsError(f"{root}: another Recorder (pid {holder}) is writing to this directory",
                         hint="use one Recorder per directory and share it between threads, or give each process "
                              "its own directory") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
