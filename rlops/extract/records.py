"""Load interaction logs and feedback events; quarantine every malformed line with its reason.

A line is quarantined, never silently dropped, when it is not JSON, breaks its JSON Schema
(the reason names the field), repeats an id, or refers to an interaction that is unknown
(or was itself quarantined). What survives is typed: `Interaction` and `FeedbackEvent`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from rlops.errors import StageFailed

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "spec" / "schemas"

Message = dict[str, str]  # {"role": ..., "content": ...} in the OpenAI chat format


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """The compiled validator of `rlops/spec/schemas/<name>.schema.json` (built once per process)."""
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


@dataclass(frozen=True)
class Quarantined:
    """A log line that could not be used, kept verbatim with the reason."""

    file: str
    line: int
    reason: str
    raw: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason, "raw": self.raw}


@dataclass(frozen=True)
class Interaction:
    interaction_id: str
    line: int
    timestamp: dt.datetime
    prompt: tuple[Message, ...]  # the system message (own or the policy's), then the input messages
    output_messages: tuple[Message, ...]


@dataclass(frozen=True)
class FeedbackEvent:
    event_id: str
    interaction_id: str
    line: int
    timestamp: dt.datetime
    actor: str
    kind: str
    details: Mapping[str, Any] = field(hash=False)  # the object named by `kind`, e.g. {"value": 4, "scale": [1, 5]}


@dataclass
class Loaded:
    """What one file yielded: every non-blank line is either a record or quarantined."""

    read: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)


@dataclass
class LoadedInteractions(Loaded):
    records: dict[str, Interaction] = field(default_factory=dict)
    quarantined_ids: dict[str, int] = field(default_factory=dict)  # id -> line, for clearer feedback reasons


@dataclass
class LoadedFeedback(Loaded):
    records: list[FeedbackEvent] = field(default_factory=list)


def message(m: Mapping[str, Any]) -> Message:
    """A copy of a validated message with a fixed key order (role, content, then the rest sorted)."""
    rest = {k: m[k] for k in sorted(m) if k not in ("role", "content")}
    return {"role": m["role"], "content": m["content"], **rest}


def build_prompt(record: Mapping[str, Any], system_prompt: str) -> tuple[Message, ...]:
    """System message (the record's system_instructions, else the policy's), then the input messages."""
    inputs = tuple(message(m) for m in record["input_messages"])
    if inputs and inputs[0]["role"] == "system":
        return inputs  # the log already carries the system message it was answered with
    system = record.get("system_instructions")
    return ({"role": "system", "content": system if system is not None else system_prompt}, *inputs)


def _lines(path: Path, display: str) -> Iterator[tuple[int, str]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StageFailed(f"{display}: no such file", hint="check data.* in the cycle spec") from None
    for number, raw in enumerate(data.splitlines(), start=1):
        if raw.strip():
            yield number, raw.decode("utf-8", errors="replace")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse(raw: str) -> tuple[Any, str | None]:
    try:
        return json.loads(raw, parse_constant=_reject_constant), None
    except json.JSONDecodeError as e:
        return None, f"not JSON: {e.msg} (column {e.colno})"
    except ValueError as e:
        return None, f"not JSON: {e}"


def _field_path(error: ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def schema_problems(name: str, obj: Any) -> list[str]:
    """Every violation of schema `name`, as 'field.path: message', sorted."""
    reasons = set()
    for error in validator(name).iter_errors(obj):
        where = _field_path(error)
        if error.validator == "required":
            missing = [k for k in error.validator_value if isinstance(error.instance, dict) and k not in error.instance]
            reasons.update(f"{where + '.' if where else ''}{k}: missing" for k in missing)
        else:
            reasons.add(f"{where}: {error.message}" if where else error.message)
    return sorted(reasons)


def _timestamp(value: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def load_interactions(path: Path, display: str, system_prompt: str) -> LoadedInteractions:
    """Read an interactions .jsonl; `display` is the path shown in quarantine reasons."""
    out = LoadedInteractions()
    for number, raw in _lines(path, display):
        out.read += 1
        reason, obj = _check_interaction(raw, out)
        if reason is not None:
            out.quarantined.append(Quarantined(display, number, reason, raw))
            if isinstance(obj, dict) and isinstance(obj.get("interaction_id"), str):
                out.quarantined_ids.setdefault(obj["interaction_id"], number)
            continue
        iid = obj["interaction_id"]
        out.records[iid] = Interaction(
            interaction_id=iid,
            line=number,
            timestamp=_timestamp(obj["timestamp"]),  # type: ignore[arg-type]  # checked above
            prompt=build_prompt(obj, system_prompt),
            output_messages=tuple(message(m) for m in obj["output_messages"]),
        )
    return out


def _check_interaction(raw: str, seen: LoadedInteractions) -> tuple[str | None, Any]:
    obj, error = _parse(raw)
    if error:
        return error, None
    problems = schema_problems("interaction", obj)
    if problems:
        return "; ".join(problems), obj
    if _timestamp(obj["timestamp"]) is None:
        return f"timestamp: {obj['timestamp']!r} is not an RFC 3339 date-time with a time-zone offset", obj
    iid = obj["interaction_id"]
    if iid in seen.records:
        return f"interaction_id: {iid} repeats the record on line {seen.records[iid].line}", None
    return None, obj


def load_feedback(path: Path, display: str, interactions: LoadedInteractions) -> LoadedFeedback:
    """Read a feedback .jsonl; events must refer to interactions loaded without problems."""
    out = LoadedFeedback()
    lines_of: dict[str, int] = {}
    for number, raw in _lines(path, display):
        out.read += 1
        obj, error = _parse(raw)
        reason = error or "; ".join(schema_problems("feedback", obj))
        if not reason:
            reason = _check_event(obj, interactions, lines_of)
        if reason:
            out.quarantined.append(Quarantined(display, number, reason, raw))
            continue
        lines_of[obj["event_id"]] = number
        out.records.append(
            FeedbackEvent(
                event_id=obj["event_id"],
                interaction_id=obj["interaction_id"],
                line=number,
                timestamp=_timestamp(obj["timestamp"]),  # type: ignore[arg-type]  # checked above
                actor=obj["actor"],
                kind=obj["kind"],
                details=obj[obj["kind"]],
            )
        )
    return out


def _unknown(iid: str, interactions: LoadedInteractions) -> str | None:
    if iid in interactions.records:
        return None
    if iid in interactions.quarantined_ids:
        return f"{iid} is a quarantined interaction (line {interactions.quarantined_ids[iid]})"
    return f"no interaction {iid} in the interaction log"


def _check_event(obj: Mapping[str, Any], interactions: LoadedInteractions, lines_of: Mapping[str, int]) -> str:
    """Checks a schema cannot express; '' when the event is usable."""
    if _timestamp(obj["timestamp"]) is None:
        return f"timestamp: {obj['timestamp']!r} is not an RFC 3339 date-time with a time-zone offset"
    if obj["event_id"] in lines_of:
        return f"event_id: {obj['event_id']} repeats the event on line {lines_of[obj['event_id']]}"
    unknown = _unknown(obj["interaction_id"], interactions)
    if unknown:
        return f"interaction_id: {unknown}"
    kind = obj["kind"]
    if kind == "rating":
        value, (low, high) = obj["rating"]["value"], obj["rating"]["scale"]
        if not low < high:
            return f"rating.scale: {[low, high]} is not [lowest, highest]"
        if not low <= value <= high:
            return f"rating.value: {value} is outside the scale {[low, high]}"
    if kind == "pairwise":
        chosen, rejected = obj["pairwise"]["chosen_id"], obj["pairwise"]["rejected_id"]
        if chosen != obj["interaction_id"]:
            return f"pairwise.chosen_id: {chosen} differs from interaction_id {obj['interaction_id']}"
        if rejected == chosen:
            return f"pairwise.rejected_id: {rejected} is also the chosen interaction"
        unknown = _unknown(rejected, interactions)
        if unknown:
            return f"pairwise.rejected_id: {unknown}"
        shown = obj["pairwise"].get("shown_order")
        if shown is not None and sorted(shown) != sorted([chosen, rejected]):
            return f"pairwise.shown_order: {shown} is not the chosen and rejected ids"
        if interactions.records[chosen].prompt != interactions.records[rejected].prompt:
            return f"pairwise: {chosen} and {rejected} answer different inputs; an A/B choice needs the same input"
    return ""
