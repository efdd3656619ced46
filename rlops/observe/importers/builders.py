"""Building rlops v1 records: ids, timestamps, agents, interactions and feedback events, and the import's tallies.

Importers call these builders so that every format writes the same shape: keys in a fixed order, empty optional
fields left out, ids that match the schema's id pattern, timestamps in RFC 3339 UTC.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlops import records
from rlops.observe.importers.source import Where, input_files
from rlops.observe.importers.source import records as source_records

INTERACTION_SCHEMA = records.SCHEMAS["interaction"]
FEEDBACK_SCHEMA = records.SCHEMAS["feedback"]
DEFAULT_TIMESTAMP = "1970-01-01T00:00:00Z"  # records without a time of their own; set --timestamp to place them
DEFAULT_VERSION = "imported"

_HEX = re.compile(r"[0-9a-fA-F]+\Z")


class Malformed(Exception):
    """One input record cannot be converted; the message is the quarantine reason (field first)."""


@dataclass(frozen=True)
class Options:
    """What the command line may set. `policy` and `agent_version` override the source's own values."""

    policy: str | None = None
    agent_version: str | None = None
    timestamp: str | None = None  # default for records without a time; None: DEFAULT_TIMESTAMP
    scales: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # rating scale per score name


@dataclass
class Context:
    """One import's options and tallies: what was read, quarantined, left unmapped, skipped or defaulted."""

    fmt: str
    options: Options = field(default_factory=Options)
    read: int = 0
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    unmapped: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    defaults: Counter = field(default_factory=Counter)
    scales: dict[str, list[float]] = field(default_factory=dict)
    out: Path | None = None  # the import's output folder: never read as input

    def records(self, source: Path, count: bool = True) -> Iterator[tuple[Where, Any]]:
        """Every record under `source` in file order; each adds to `read` with `count` (an unreadable line always
        does: importers that count finer units, like spans, pass count=False and count those themselves)."""
        def bad(where: Where, reason: str) -> None:
            self.read += 1  # an unreadable line counts as one record read, whatever the unit
            self.quarantine(where, reason)

        for path, display, name in input_files(source, self.out):
            for where, obj in source_records(path, display, name, bad):
                self.read += count
                yield where, obj

    @contextlib.contextmanager
    def tentative(self) -> Iterator[None]:
        """Unmapped and defaulted counts of one record are kept only if it converts (a quarantined one adds none)."""
        unmapped, defaults = self.unmapped, self.defaults
        self.unmapped, self.defaults = Counter(), Counter()
        try:
            yield
            unmapped.update(self.unmapped)
            defaults.update(self.defaults)
        finally:
            self.unmapped, self.defaults = unmapped, defaults

    def quarantine(self, where: Where, reason: str) -> None:
        self.quarantined.append({**where.to_json(), "reason": reason})

    def note_unmapped(self, obj: Mapping[str, Any], mapped: Iterable[str], prefix: str) -> None:
        """Count each key of `obj` that holds something (not null or empty) and that the importer did not map."""
        known = set(mapped)
        for key, value in obj.items():
            if key not in known and value not in (None, "", [], {}):
                self.unmapped[f"{prefix}{key}"] += 1

    def default_timestamp(self, what: str) -> str:
        self.defaults[f"{what} (no time in the source: --timestamp)"] += 1
        return timestamp(self.options.timestamp or DEFAULT_TIMESTAMP)

    def agent(self, name: Any = None, version: Any = None, fallback_name: str | None = None) -> dict[str, str]:
        """The answering agent: --policy / --agent-version win, then the source's values, then defaults."""
        chosen_name = self.options.policy or text_or_none(name) or fallback_name or self.fmt
        chosen_version = self.options.agent_version or text_or_none(version)
        if not chosen_version:
            self.defaults[f"agent.version ('{DEFAULT_VERSION}': none in the source; set --agent-version)"] += 1
            chosen_version = DEFAULT_VERSION
        return {"name": chosen_name, "version": chosen_version}


def text_or_none(value: Any) -> str | None:
    """A source value as text (numbers written out), or None when it is empty or not text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return value.strip() or None if isinstance(value, str) else None


# ---- ids -------------------------------------------------------------------------------------------------------

def sha1(*parts: Any) -> str:
    return hashlib.sha1("\0".join(str(p) for p in parts).encode("utf-8")).hexdigest()


def safe_id(*parts: Any) -> str:
    """An id matching the schema's pattern, built from source ids; altered ids get a hash so they stay unique."""
    joined = "-".join(str(p) for p in parts if p not in (None, ""))
    if records.is_id(joined):
        return joined
    cleaned = re.sub(r"[^A-Za-z0-9._:-]+", "-", joined).strip("-._:")[:150]
    return f"{cleaned or 'id'}-{sha1(joined)[:12]}"


def row_key(where: Where, obj: Any) -> str:
    """A digest of a source record and its place (file name, line, path): the seed of ids derived from it."""
    content = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return sha1(where.name, where.line, where.path, content)


def derived_id(prefix: str, key: str, *extra: Any) -> str:
    """A deterministic id for a record without one: `prefix`-hash of its row_key and `extra` (e.g. 'chosen')."""
    return f"{prefix}-{sha1(key, *extra)[:20]}"


def user_id(value: Any) -> str | None:
    """An end user's opaque id as text (up to 200 characters: longer ones are hashed)."""
    text = text_or_none(value)
    if text is None:
        return None
    return text if len(text) <= 200 else f"user-{sha1(text)}"


def hex_id(value: Any, length: int) -> str | None:
    """A W3C trace (32) or span (16) id as lower-case hex, from hex or a dashed UUID; None when it is neither."""
    if not isinstance(value, str):
        return None
    text = value.replace("-", "") if length == 32 and len(value) == 36 else value
    if len(text) == length and _HEX.match(text) and set(text) != {"0"}:
        return text.lower()
    return None


# ---- time ------------------------------------------------------------------------------------------------------

def timestamp(value: Any, assume_utc: list[bool] | None = None) -> str:
    """RFC 3339 UTC ('...Z') from an ISO string or epoch seconds/milliseconds/nanoseconds; ValueError if neither."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, (int, float)):
        seconds = value / 1e9 if value > 1e14 else value / 1e3 if value > 1e11 else value
        when = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        # fractions of any length to microseconds: Python 3.10's fromisoformat takes only 3 or 6 digits
        text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "00000")[:6], text)
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
        if when.tzinfo is None:
            if assume_utc is not None:
                assume_utc.append(True)
            when = when.replace(tzinfo=dt.timezone.utc)
    else:
        raise ValueError(f"{value!r} is not a time")
    text = when.astimezone(dt.timezone.utc).isoformat(timespec="microseconds" if when.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def source_time(ctx: Context, value: Any, what: str) -> str:
    """A record's time from the source, or the --timestamp default when it has none; Malformed when unreadable."""
    if value in (None, ""):
        return ctx.default_timestamp(what)
    naive: list[bool] = []
    try:
        out = timestamp(value, naive)
    except (ValueError, OverflowError, OSError) as e:
        raise Malformed(f"{what}: {e}") from None
    if naive:
        ctx.defaults[f"{what} (no time zone in the source: read as UTC)"] += 1
    return out


def epoch(value: Any) -> float | None:
    """Seconds since the epoch of a time in any form `timestamp` reads; None when unreadable."""
    try:
        return dt.datetime.fromisoformat(timestamp(value)[:-1] + "+00:00").timestamp()
    except (ValueError, TypeError, OverflowError, OSError):
        return None


def millis_between(start: Any, end: Any) -> float | None:
    a, b = epoch(start), epoch(end)
    if a is None or b is None or b < a:
        return None
    return round((b - a) * 1000, 3)


def attach_steps(answers: list[tuple[float, Any]], steps: list[tuple[float, Any]]) -> dict[Any, list]:
    """Give each tool step (start, step) to the model call (start, key) that asked for it: the last one that began
    before the step did (steps before every call go to the first). The OTel importer matches call ids instead."""
    out: dict[Any, list] = {key: [] for _, key in answers}
    ordered = sorted(answers, key=lambda a: a[0])
    for start, step in sorted(steps, key=lambda s: s[0]):
        earlier = [key for begin, key in ordered if begin <= start]
        target = earlier[-1] if earlier else (ordered[0][1] if ordered else None)
        if target is not None:
            out[target].append(step)
    return out


# ---- records ---------------------------------------------------------------------------------------------------

def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def usage(input_tokens: Any, output_tokens: Any) -> dict[str, int] | None:
    out = {k: v for k, v in (("input_tokens", _count(input_tokens)), ("output_tokens", _count(output_tokens)))
           if v is not None}
    return out or None


def interaction(*, interaction_id: str, timestamp: str, agent: Mapping[str, str], input_messages: list[dict],
                output_messages: list[dict], conversation_id: str | None = None, trace_id: str | None = None,
                span_id: str | None = None, system_instructions: str | None = None,
                tool_definitions: list[dict] | None = None, steps: list[dict] | None = None,
                usage: Mapping[str, int] | None = None, outcome: Mapping[str, Any] | None = None,
                regenerates: str | None = None, user: str | None = None) -> dict[str, Any]:
    """An interaction record with the fields in contract order; empty optional fields are left out."""
    if not input_messages:
        raise Malformed("input_messages: the source has no input messages")
    if not output_messages:
        raise Malformed("output_messages: the source has no output (the call failed or was not recorded)")
    record: dict[str, Any] = {"schema": INTERACTION_SCHEMA, "interaction_id": interaction_id}
    optional = {
        "conversation_id": conversation_id, "trace_id": trace_id, "span_id": span_id,
    }
    record.update({k: v for k, v in optional.items() if v})
    record["timestamp"] = timestamp
    record["agent"] = dict(agent)
    if user:
        record["user"] = user
    if system_instructions:
        record["system_instructions"] = system_instructions
    if tool_definitions:
        record["tool_definitions"] = tool_definitions
    record["input_messages"] = input_messages
    record["output_messages"] = output_messages
    for key, value in (("steps", steps), ("usage", usage), ("outcome", outcome), ("regenerates", regenerates)):
        if value:
            record[key] = value
    return record


def feedback(*, event_id: str, interaction_id: str, timestamp: str, actor: str, kind: str,
             details: Mapping[str, Any]) -> dict[str, Any]:
    return {"schema": FEEDBACK_SCHEMA, "event_id": event_id, "interaction_id": interaction_id,
            "timestamp": timestamp, "actor": actor, "kind": kind, kind: dict(details)}


def actor(kind: str, name: Any) -> str:
    """'kind:name' as the schema wants it (kind lower-case letters, name not empty)."""
    text = text_or_none(name) or "unknown"
    return f"{re.sub(r'[^a-z]', '', kind.lower()) or 'source'}:{text}"


def score_scale(ctx: Context, name: str, values: Iterable[float]) -> tuple[float, float]:
    """The rating scale of a score name: --scale NAME=LO,HI, else the smallest usual scale holding every value."""
    if name in ctx.options.scales:
        lo, hi = ctx.options.scales[name]
    else:
        seen = list(values)
        lo_seen, hi_seen = min(seen), max(seen)
        for lo, hi in ((0, 1), (1, 5), (0, 5), (1, 10), (0, 10), (0, 100)):
            if lo <= lo_seen and hi_seen <= hi:
                break
        else:
            lo, hi = lo_seen, hi_seen
    ctx.scales[name] = [lo, hi]
    return lo, hi


def number(value: Any) -> float | int | None:
    """A finite JSON number (bool is not one), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None
