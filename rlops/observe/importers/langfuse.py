"""Langfuse export -> rlops interactions (one per GENERATION), tool steps, and feedback from scores.

Accepted records (JSONL lines or JSON array elements, in any mix): traces as the public API returns them
(GET /api/public/traces/{id}: a trace with nested `observations` and `scores`; GET /api/public/traces: traces
that list only the ids of theirs), observations and scores on their own (joined on their trace), API pages
{"data": [...], "meta": {...}} with page numbers or a cursor, and wrappers {"traces", "observations", "scores"}
whose values are lists or pages. Both API versions, as defined in Langfuse's Fern API definitions
(github.com/langfuse/langfuse, fern/apis/server/definition/, read at commit 62751446):
- v1/v2: `trace.yml` (Traces, commons.TraceWithFullDetails), `legacy/observations-v1.yml` (ObservationsViews),
  `scores.yml` GET /api/public/v2/scores (commons.Score: `traceId`, `observationId`, `sessionId`, `datasetRunId`;
  `value` a number, text in `stringValue`), offset pages (`utils/pagination.yml` MetaResponse);
- v3: `observations.yml` GET /api/public/v2/observations (commons.ObservationV2: `input`/`output` returned as raw
  JSON text, the trace's name, user, session and release copied on each one; cursor pages), `scores-v3.yml`
  GET /api/public/v3/scores (ScoreV3: `subject` {kind: trace | observation | session | experiment, id, traceId};
  `value` a number, a boolean or text by `dataType`; cursor pages).

| Langfuse                                    | rlops                                                      |
|---------------------------------------------|------------------------------------------------------------|
| observation type GENERATION                 | one interaction, interaction_id `langfuse-<observation id>` |
| trace without generations, with input/output| one interaction, interaction_id `langfuse-<trace id>`      |
| generation `input` (messages, {messages, tools}, or text) | input_messages; `tools` -> tool_definitions  |
| generation `output` (message, text, choices) | output_messages (tool_calls kept)                         |
| `endTime` (else `startTime`); end - start   | timestamp; outcome.latency_ms                              |
| `level` ERROR + `statusMessage`             | outcome {status: error, detail}                            |
| `usageDetails`/`usage` input, output (or promptTokens/completionTokens) | usage.input_tokens / output_tokens |
| trace `sessionId`, `userId`                 | conversation_id, user                                      |
| trace id (32 hex or UUID), observation id (16 hex) | trace_id, span_id                                   |
| trace `name`; generation/trace `version`, trace `release` | agent.name (unless --policy), agent.version  |
| observation type TOOL (name, input, output, level) | a step of the generation that called it: the last one that started before it |
| score NUMERIC (source ANNOTATION / API)      | rating {value, scale}: --scale NAME=LO,HI, else the smallest of [0,1], [1,5], [0,5], [1,10], [0,10], [0,100] holding every value of that name |
| score NUMERIC or BOOLEAN with source EVAL    | judge {model: 'langfuse-eval', rubric: name, score, explanation: comment} |
| score BOOLEAN                               | rating {value 0/1, scale [0, 1]}                           |
| score CATEGORICAL / TEXT                    | comment {text: '<name>: <value>'}                          |
| score CORRECTION (or name 'correction')     | edit {output_messages: the corrected output}               |
| score `comment` (rating scores)             | a comment event beside the rating                          |
| score `observationId` / `traceId` (v3: `subject` observation / trace) | the generation's interaction / the trace's last generation |
| score source / `authorUserId`               | actor annotator:<user>, api:<user or score name>, judge:<score name> |

Quarantined: unreadable records, a record whose id repeats one already read (the first copy counts), generations
whose input or output are not chat messages, scores about traces or observations that are not in the export.
Skipped (counted): scores about a session or an experiment, traces with nothing to import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlops.components import Importer, register
from rlops.observe.importers import SOURCE, WRITES
from rlops.observe.importers.builders import (
    Context,
    Malformed,
    actor,
    attach_steps,
    epoch,
    feedback,
    hex_id,
    interaction,
    millis_between,
    number,
    safe_id,
    score_scale,
    source_time,
    text_or_none,
    usage,
    user_id,
)
from rlops.observe.importers.messages import arguments_object, messages, output_messages, tool_definitions
from rlops.observe.importers.source import Where, loads

READ_UNIT = "records"
SKIPPED_SUBJECT = {"session": "score about a session, not a trace or observation",
                   "experiment": "score about an experiment (dataset run), not a trace or observation"}
OBSERVATION_TYPES = {"GENERATION", "SPAN", "EVENT", "TOOL", "AGENT", "CHAIN", "RETRIEVER", "EMBEDDING", "EVALUATOR",
                     "GUARDRAIL"}
_QUIET = {"id", "projectId", "createdAt", "updatedAt", "htmlPath", "latency", "totalCost", "public", "bookmarked",
          "environment", "externalId", "traceId", "type", "parentObservationId", "completionStartTime",
          "costDetails", "calculatedInputCost", "calculatedOutputCost", "calculatedTotalCost", "totalTokens",
          "unit", "timeToFirstToken", "inputPrice", "outputPrice", "totalPrice",
          # v2 observations: the trace's fields copied onto each observation (read by _trace_of)
          "traceName", "userId", "sessionId", "release", "tags", "isRootObservation"}



def _listed(ctx: Context, where: Where, obj: dict, key: str) -> tuple[list, Where]:
    """obj[key] and its place when it is a list or an API page {"data": [...], "meta": ...}; absent or null is an
    empty list; anything else is quarantined as malformed."""
    value = obj.get(key)
    if value is None or isinstance(value, list):
        return value or [], where.at(key)
    if _page(value):
        return value["data"], where.at(f"{key}.data")
    ctx.quarantine(where.at(key), f"{key}: must be a list or an API page {{\"data\": [...]}}, not "
                                  f"{type(value).__name__}")
    return [], where.at(key)


def _page(obj: Any) -> bool:
    """An API page: {"data": [...], "meta": {page, limit, totalItems, totalPages}} (offset pages, v1/v2 endpoints)
    or {"data": [...], "meta": {"cursor": ...}} (cursor pages: /api/public/v2/observations, /api/public/v3/scores)."""
    return isinstance(obj, dict) and isinstance(obj.get("data"), list) and "id" not in obj


def _is_listing(value: Any) -> bool:
    return isinstance(value, list) or _page(value)


def _subject(s: dict) -> tuple[str, Any]:
    """(kind, id) of what a score is about: the v3 `subject` {kind, id, traceId}, else the v1/v2 fields
    observationId, traceId, sessionId or datasetRunId (an observation's id is unique within its export)."""
    subject = s.get("subject")
    if isinstance(subject, dict):
        return str(subject.get("kind") or "").lower(), subject.get("id")
    for field, kind in (("observationId", "observation"), ("traceId", "trace"), ("sessionId", "session"),
                        ("datasetRunId", "experiment")):
        if s.get(field):
            return kind, s[field]
    return "", None


def _io(value: Any) -> Any:
    """An observation's input or output: the v2 observations API returns them as raw JSON text, so text holding
    a JSON object or array is read as that value (other text stays text)."""
    if isinstance(value, str) and value[:1] in "{[" and value.rstrip()[-1:] in "}]":
        try:
            parsed = loads(value)
        except (ValueError, RecursionError):
            return value
        if isinstance(parsed, (dict, list)):
            return parsed
    return value


class _Export:
    """Everything read, keyed by id; a record whose id was already read is quarantined (the first copy counts)."""

    def __init__(self) -> None:
        self.traces: dict[str, tuple[Where, dict]] = {}
        self.observations: dict[str, tuple[Where, dict]] = {}
        self.scores: dict[str, tuple[Where, dict]] = {}

    def _keep(self, ctx: Context, into: dict[str, tuple[Where, dict]], what: str, where: Where, obj: dict) -> None:
        first = into.get(obj["id"])
        if first is not None:
            ctx.quarantine(where, f"id: {obj['id']} repeats the {what} from {first[0]}")
        elif what == "score":
            into[obj["id"]] = (where, obj)
        else:
            into[obj["id"]] = (where, {**obj, **{k: _io(obj[k]) for k in ("input", "output") if k in obj}})

    def add(self, ctx: Context, where: Where, obj: Any) -> None:
        if not isinstance(obj, dict):
            ctx.quarantine(where, f"a record must be a JSON object, not {type(obj).__name__}")
        elif _page(obj):
            for i, item in enumerate(obj["data"]):
                self.add(ctx, where.at(f"data[{i}]"), item)
        elif any(_is_listing(obj.get(k)) for k in ("traces", "observations", "scores")) and "id" not in obj:
            for key in ("traces", "observations", "scores"):
                items, place = _listed(ctx, where, obj, key)
                for i, item in enumerate(items):
                    self.add(ctx, place.at(f"[{i}]"), item)
        elif not isinstance(obj.get("id"), str) or not obj["id"]:
            ctx.quarantine(where, "id: missing; every Langfuse trace, observation and score has one")
        elif "traceId" in obj and obj.get("type") in OBSERVATION_TYPES:
            self._keep(ctx, self.observations, "observation", where, obj)
        elif "traceId" in obj or "observationId" in obj or "dataType" in obj or "subject" in obj:
            self._keep(ctx, self.scores, "score", where, obj)
        else:
            self._keep(ctx, self.traces, "trace", where, obj)
            for key, into, what in (("observations", self.observations, "observation"),
                                    ("scores", self.scores, "score")):
                items, place = _listed(ctx, where, obj, key)
                for i, item in enumerate(items):  # GET /traces lists only their ids: those records come on their own
                    if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
                        self._keep(ctx, into, what, place.at(f"[{i}]"), {"traceId": obj["id"], **item})


def convert(ctx: Context, source: Path) -> Iterator[tuple[str, dict[str, Any], Where]]:
    export = _Export()
    for where, obj in ctx.records(source):
        export.add(ctx, where, obj)
    by_trace: dict[str, list[tuple[Where, dict]]] = {}
    for where, obs in export.observations.values():
        by_trace.setdefault(str(obs["traceId"]), []).append((where, obs))
    target: dict[str, str] = {}  # observation or trace id -> interaction id that its scores belong to
    for trace_id, (where, trace) in export.traces.items():
        yield from _trace(ctx, where, trace, by_trace.pop(trace_id, []), target)
    for trace_id, observations in by_trace.items():  # observations exported without their trace
        yield from _trace(ctx, observations[0][0], _trace_of(trace_id, observations), observations, target)
    yield from _scores(ctx, export, target)


def _trace_of(trace_id: str, observations: list[tuple[Where, dict]]) -> dict[str, Any]:
    """A trace known only from its observations: the v2 observations API copies the trace's name, user, session
    and release onto each one (field groups `basic` and `trace_context`)."""
    trace: dict[str, Any] = {"id": trace_id}
    for key, field in (("name", "traceName"), ("userId", "userId"), ("sessionId", "sessionId"),
                       ("release", "release")):
        value = next((o[field] for _, o in observations if o.get(field)), None)
        if value is not None:
            trace[key] = value
    return trace


def _trace(ctx: Context, where: Where, trace: dict, observations: list[tuple[Where, dict]],
           target: dict[str, str]) -> Iterator:
    ctx.note_unmapped(trace, _QUIET | {"timestamp", "name", "userId", "sessionId", "version", "release", "input",
                                       "output", "observations", "scores"}, "trace.")
    gens = sorted((o for o in observations if o[1].get("type") == "GENERATION"),
                  key=lambda o: (epoch(o[1].get("startTime")) or 0, o[1]["id"]))
    tools = [o for o in observations if o[1].get("type") == "TOOL"]
    ctx.skipped.update(f"observation type {o.get('type')}" for _, o in observations
                       if o.get("type") not in ("GENERATION", "TOOL"))
    if not gens:
        if trace.get("input") is None or trace.get("output") is None:
            ctx.skipped["trace without a generation or input/output"] += 1
            ctx.skipped["observation type TOOL"] += len(tools)
            return
        gens = [(where, {**trace, "type": "trace", "startTime": trace.get("timestamp")})]
    steps = attach_steps([(epoch(g.get("startTime")) or 0, g["id"]) for _, g in gens],
                         [(epoch(t.get("startTime")) or 0, _step(ctx, t))
                          for _, t in tools])
    made: list[str] = []
    for gwhere, gen in gens:
        try:
            with ctx.tentative():
                record = _interaction(ctx, trace, gen, steps[gen["id"]])
        except Malformed as e:
            ctx.quarantine(gwhere, str(e))
            continue
        target[gen["id"]] = record["interaction_id"]
        made.append(record["interaction_id"])
        yield "interaction", record, gwhere
    if made:
        target.setdefault(str(trace["id"]), made[-1])  # trace-level scores are about the final answer
        for _, t in tools:
            target.setdefault(t["id"], made[-1])


def _step(ctx: Context, obs: dict) -> dict[str, Any]:
    step: dict[str, Any] = {"type": "tool_call", "name": text_or_none(obs.get("name")) or "tool",
                            "arguments": arguments_object(obs.get("input"))}
    if obs.get("output") is not None:
        step["result"] = obs["output"]
    if obs.get("level") == "ERROR":
        step["error"] = str(obs.get("statusMessage") or "error")
    duration = millis_between(obs.get("startTime"), obs.get("endTime"))
    if duration is not None:
        step["duration_ms"] = duration
    ctx.note_unmapped(obs, _QUIET | {"name", "input", "output", "level", "statusMessage", "startTime", "endTime"},
                      "tool.")
    return step


def _interaction(ctx: Context, trace: dict, gen: dict, steps: list[dict]) -> dict[str, Any]:
    raw_input = gen.get("input")
    tools = []
    if isinstance(raw_input, dict) and "messages" in raw_input:
        tools = tool_definitions(raw_input.get("tools"), ctx, "input.tools")
        ctx.note_unmapped(raw_input, {"messages", "tools"}, "generation.input.")
    outcome: dict[str, Any] = {"status": "error" if gen.get("level") == "ERROR" else "ok"}
    latency = millis_between(gen.get("startTime"), gen.get("endTime"))
    if latency is not None:
        outcome["latency_ms"] = latency
    if gen.get("statusMessage"):
        outcome["detail"] = str(gen["statusMessage"])
    details = gen.get("usageDetails") or gen.get("usage") or {}
    tokens = usage(details.get("input", gen.get("promptTokens")), details.get("output", gen.get("completionTokens")))
    is_trace = gen.get("type") == "trace"
    if not is_trace:
        ctx.note_unmapped(gen, _QUIET | {"name", "startTime", "endTime", "input", "output", "usage", "usageDetails",
                                         "level", "statusMessage", "version", "promptTokens", "completionTokens"},
                          "generation.")
    if gen.get("output") is None:
        raise Malformed("output: missing" + (f" (the generation failed: {gen['statusMessage']})"
                                             if gen.get("statusMessage") else ""))
    prompt, answer = messages(raw_input, ctx, "user", "input"), output_messages(gen["output"], ctx, "output")
    return interaction(
        interaction_id=safe_id("langfuse", gen["id"]),
        conversation_id=safe_id(trace["sessionId"]) if trace.get("sessionId") else None,
        trace_id=hex_id(trace["id"], 32), span_id=None if is_trace else hex_id(gen["id"], 16),
        timestamp=source_time(ctx, gen.get("endTime") or gen.get("startTime"), "timestamp"),
        agent=ctx.agent(trace.get("name"), gen.get("version") or trace.get("version") or trace.get("release")),
        user=user_id(trace.get("userId")), tool_definitions=tools, input_messages=prompt, output_messages=answer,
        steps=steps, usage=tokens, outcome=outcome)


def _scores(ctx: Context, export: _Export, target: dict[str, str]) -> Iterator:
    numeric: dict[str, list[float]] = {}
    for _, s in export.scores.values():
        if _data_type(s) == "NUMERIC" and s.get("source") != "EVAL" and number(s.get("value")) is not None:
            numeric.setdefault(str(s.get("name")), []).append(s["value"])
    scales = {name: score_scale(ctx, name, values) for name, values in sorted(numeric.items())}
    for where, s in export.scores.values():
        kind, subject = _subject(s)
        if kind in ("session", "experiment"):
            ctx.skipped[SKIPPED_SUBJECT[kind]] += 1
            continue
        if kind not in ("trace", "observation") or not isinstance(subject, str) or not subject:
            ctx.quarantine(where, "subject: a score is about a trace, an observation, a session or an experiment "
                                  "(subject {kind, id} in the v3 API; traceId, observationId, sessionId or "
                                  "datasetRunId before)")
            continue
        iid = target.get(subject)
        if iid is None:
            field = "subject.id" if isinstance(s.get("subject"), dict) else \
                "observationId" if kind == "observation" else "traceId"
            ctx.quarantine(where, f"{field}: {subject} is not an imported {'generation' if kind == 'observation' else 'trace'} "
                                  "(missing from the export, or quarantined)")
            continue
        try:
            with ctx.tentative():
                events = _score_events(ctx, s, iid, scales)
        except Malformed as e:
            ctx.quarantine(where, str(e))
            continue
        yield from (("feedback", e, where) for e in events)


def _data_type(s: dict) -> str:
    kind = str(s.get("dataType") or "").upper()
    if kind == "CORRECTION" or str(s.get("name", "")).lower() == "correction":
        return "CORRECTION"
    if kind:
        return kind
    return "NUMERIC" if number(s.get("value")) is not None else "CATEGORICAL"


def _score_events(ctx: Context, s: dict, iid: str, scales: dict[str, tuple[float, float]]) -> list[dict]:
    kind, name, source = _data_type(s), str(s.get("name") or "score"), s.get("source")
    when = source_time(ctx, s.get("timestamp") or s.get("createdAt"), "score.timestamp")
    who = (actor("judge", name) if source == "EVAL" else
           actor("annotator", s.get("authorUserId")) if source == "ANNOTATION" else
           actor("api", s.get("authorUserId") or name))
    base = safe_id("langfuse", s["id"])
    text = s.get("stringValue") if isinstance(s.get("stringValue"), str) else s.get("value")
    comment = s.get("comment") if isinstance(s.get("comment"), str) and s["comment"].strip() else None
    ctx.note_unmapped(s, _QUIET | {"name", "value", "stringValue", "dataType", "source", "timestamp", "comment",
                                   "observationId", "authorUserId", "sessionId", "configId", "queueId", "subject",
                                   "trace", "datasetRunId"}, "score.")

    def event(kind_: str, details: dict, suffix: str = "") -> dict:
        return feedback(event_id=base + suffix, interaction_id=iid, timestamp=when, actor=who, kind=kind_,
                        details=details)

    if kind == "CORRECTION":
        if not isinstance(text, str) or not text.strip():
            raise Malformed("stringValue: a CORRECTION score carries the corrected output as text")
        return [event("edit", {"output_messages": _corrected(ctx, text)})]
    if kind in ("CATEGORICAL", "TEXT"):
        label = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
        return [event("comment", {"text": f"{name}: {label}" + (f"\n{comment}" if comment else "")})]
    if kind == "BOOLEAN":
        value = _boolean(s)
        scale = [0, 1]
    elif kind == "NUMERIC":
        value = number(s.get("value"))
        if value is None:
            raise Malformed(f"value: {s.get('value')!r} is not a number (dataType NUMERIC)")
        scale = list(scales.get(name, (0, 1)))
    else:
        raise Malformed(f"dataType: {s.get('dataType')!r} is not NUMERIC, BOOLEAN, CATEGORICAL, TEXT or CORRECTION")
    if source == "EVAL":
        details = {"model": "langfuse-eval", "rubric": name, "score": value}
        if kind == "BOOLEAN":
            details["scale"] = scale
        if comment:
            details["explanation"] = comment
        return [event("judge", details)]
    if not scale[0] <= value <= scale[1]:
        raise Malformed(f"value: {value} is outside the scale {scale} of score {name!r} (set --scale {name}=LO,HI)")
    out = [event("rating", {"value": value, "scale": scale})]
    if comment:
        out.append(event("comment", {"text": comment}, ":comment"))
    return out


def _boolean(s: dict) -> int:
    value, text = s.get("value"), str(s.get("stringValue", "")).lower()
    if value in (0, 1) or isinstance(value, bool):
        return int(value)
    if text in ("true", "false"):
        return int(text == "true")
    raise Malformed(f"value: {value!r} is not a boolean score (0/1, true/false)")


def _corrected(ctx: Context, text: str) -> list[dict[str, Any]]:
    """A correction is the corrected output: chat message(s) as JSON, or the answer's text."""
    try:
        parsed = loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, (dict, list)):
        try:
            return output_messages(parsed, ctx, "stringValue")
        except Malformed:
            pass  # JSON, but not messages: the text itself is the corrected answer
    return [{"role": "assistant", "content": text}]


register(Importer("importer", "langfuse", description="Langfuse export: traces with observations and scores",
                   reads=SOURCE, writes=WRITES, function=convert,
                  read_unit=READ_UNIT))
