"""Langfuse export -> rlops interactions (one per GENERATION), tool steps, and feedback from scores.

Accepted records (JSONL lines or JSON array elements, in any mix): traces as the public API returns them
(GET /api/public/traces/{id}: a trace with nested `observations` and `scores`), observations and scores on their
own (joined on `traceId`), and API pages {"data": [...]}.

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
| score `observationId` / `traceId`           | the generation's interaction / the trace's last generation |
| score source / `authorUserId`               | actor annotator:<user>, api:<user or score name>, judge:<score name> |

Quarantined: unreadable records, generations whose input or output are not chat messages, scores about traces or
observations that are not in the export. Skipped (counted): session-only scores, traces with nothing to import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlops.observe.importers.messages import arguments_object, messages, output_messages, tool_definitions
from rlops.observe.importers.records import (Context, Malformed, actor, attach_steps, epoch,
                                             feedback, hex_id, interaction, millis_between, number, safe_id,
                                             score_scale, source_time, text_or_none, usage, user_id)
from rlops.observe.importers.source import Where

READ_UNIT = "records"
OBSERVATION_TYPES = {"GENERATION", "SPAN", "EVENT", "TOOL", "AGENT", "CHAIN", "RETRIEVER", "EMBEDDING", "EVALUATOR",
                     "GUARDRAIL"}
_QUIET = {"id", "projectId", "createdAt", "updatedAt", "htmlPath", "latency", "totalCost", "public", "bookmarked",
          "environment", "externalId", "traceId", "type", "parentObservationId", "completionStartTime",
          "costDetails", "calculatedInputCost", "calculatedOutputCost", "calculatedTotalCost", "totalTokens",
          "unit", "timeToFirstToken", "inputPrice", "outputPrice", "totalPrice"}



def _listed(ctx: Context, where: Where, obj: dict, key: str) -> list:
    """obj[key] when it is a list; absent or null is an empty one; anything else is quarantined as malformed."""
    value = obj.get(key)
    if value is None or isinstance(value, list):
        return value or []
    ctx.quarantine(where.at(key), f"{key}: must be a list, not {type(value).__name__}")
    return []

class _Export:
    """Everything read, keyed by id (a record seen twice keeps its first copy)."""

    def __init__(self) -> None:
        self.traces: dict[str, tuple[Where, dict]] = {}
        self.observations: dict[str, tuple[Where, dict]] = {}
        self.scores: dict[str, tuple[Where, dict]] = {}

    def add(self, ctx: Context, where: Where, obj: Any) -> None:
        if not isinstance(obj, dict):
            ctx.quarantine(where, f"a record must be a JSON object, not {type(obj).__name__}")
        elif isinstance(obj.get("data"), list) and "id" not in obj:
            for i, item in enumerate(obj["data"]):
                self.add(ctx, where.at(f"data[{i}]"), item)
        elif any(isinstance(obj.get(k), list) for k in ("traces", "observations", "scores")) and "id" not in obj:
            for key in ("traces", "observations", "scores"):
                for i, item in enumerate(_listed(ctx, where, obj, key)):
                    self.add(ctx, where.at(f"{key}[{i}]"), item)
        elif not isinstance(obj.get("id"), str) or not obj["id"]:
            ctx.quarantine(where, "id: missing; every Langfuse trace, observation and score has one")
        elif "traceId" in obj and obj.get("type") in OBSERVATION_TYPES:
            self.observations.setdefault(obj["id"], (where, obj))
        elif "traceId" in obj or "observationId" in obj or "dataType" in obj:
            self.scores.setdefault(obj["id"], (where, obj))
        else:
            self.traces.setdefault(obj["id"], (where, obj))
            for key, into in (("observations", self.observations), ("scores", self.scores)):
                for i, item in enumerate(_listed(ctx, where, obj, key)):
                    if isinstance(item, dict) and isinstance(item.get("id"), str):
                        into.setdefault(item["id"], (where.at(f"{key}[{i}]"), {"traceId": obj["id"], **item}))


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
        yield from _trace(ctx, observations[0][0], {"id": trace_id}, observations, target)
    yield from _scores(ctx, export, target)


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
        subject = s.get("observationId") or s.get("traceId")
        if not subject:
            ctx.skipped["score about a session, not a trace or observation"] += 1
            continue
        iid = target.get(str(subject))
        if iid is None:
            ctx.quarantine(where, f"{'observationId' if s.get('observationId') else 'traceId'}: {subject} is not "
                                  "an imported generation or trace (missing from the export, or quarantined)")
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
                                   "observationId", "authorUserId", "sessionId", "configId", "queueId"}, "score.")

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
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, (dict, list)):
        try:
            return output_messages(parsed, ctx, "stringValue")
        except Malformed:
            pass  # JSON, but not messages: the text itself is the corrected answer
    return [{"role": "assistant", "content": text}]
