"""OpenTelemetry GenAI spans (OTLP/JSON) -> rlops interactions, tool steps and judge feedback.

Input: OTLP/JSON trace exports, {"resourceSpans": [{"resource", "scopeSpans": [{"scope", "spans": [...]}]}]}, one
per .json file or one per line of a .jsonl file (the Collector's file exporter); OTLP/JSON log exports
({"resourceLogs": ...}) beside them supply GenAI events sent as log records
(eventName gen_ai.evaluation.result). Attributes are OTLP key/value
lists (stringValue, intValue, doubleValue, boolValue, arrayValue, kvlistValue); JSON-valued GenAI attributes may be
JSON strings or structured values. Names follow the GenAI semantic conventions (gen_ai.* registry, development).

| OTLP / GenAI semantic conventions           | rlops                                                      |
|---------------------------------------------|------------------------------------------------------------|
| span with `gen_ai.input.messages` / `gen_ai.output.messages`, not inside another such span | one interaction per output message (choice), interaction_id `otel-<traceId>-<spanId>` (+ `.N` for several choices) |
| such a span inside another one              | folded into the outer one (its usage is summed when the outer has none) |
| `traceId`, `spanId`                         | trace_id, span_id                                          |
| `endTimeUnixNano`; end - start              | timestamp; outcome.latency_ms                              |
| `status.code` ERROR, `status.message` / `error.type` | outcome {status: error, detail}                   |
| `gen_ai.input.messages` parts: text, tool_call, tool_call_response | input_messages: content, assistant tool_calls, role tool messages with tool_call_id |
| `gen_ai.output.messages` (+ `finish_reason` other than stop/tool_call) | output_messages (+ outcome.detail) |
| `gen_ai.system_instructions` (text parts)   | system_instructions                                        |
| `gen_ai.tool.definitions`                   | tool_definitions (OpenAI shape)                            |
| `gen_ai.conversation.id`, `user.id`          | conversation_id, user (from the span or its ancestors)     |
| `gen_ai.agent.name`, `gen_ai.agent.version`  | agent.name (unless --policy), agent.version (span or ancestors; else service.name, 'imported') |
| `gen_ai.usage.input_tokens` / `output_tokens` | usage                                                    |
| child span `gen_ai.operation.name` = execute_tool: `gen_ai.tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.call.arguments`, `gen_ai.tool.call.result`, status | a step {name, call_id, arguments, result, error, duration_ms} of its ancestor interaction, else of the interaction whose output (then input) holds that tool call id |
| span event `gen_ai.evaluation.result`: `gen_ai.evaluation.name`, `score.value`, `score.label`, `explanation` | feedback kind judge {model: the event's gen_ai.response.model / request.model, else 'unspecified'; rubric: name; score; explanation: '<label>: <explanation>'}, actor judge:<name>; a label without a score: a comment |
| the same event as an OTLP log record (`eventName`, `traceId`/`spanId`) | the same feedback, about the span it names |
| evaluation event `gen_ai.response.id`       | finds the evaluated interaction when the event is not on (or under) its span |

Quarantined: lines that are not OTLP/JSON, spans without valid ids, a span whose id repeats one already read in its
trace, an evaluation log record repeating one already read (same span, time and content; log records have no id),
GenAI attributes that are not valid JSON or messages, interactions without input or output, evaluation results
about no imported interaction. Other span
attributes and events of imported spans are counted as unmapped; spans with no GenAI messages are skipped (counted).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlops.components import Importer, register
from rlops.observe.importers import SOURCE, WRITES
from rlops.observe.importers.builders import (
    Context,
    Malformed,
    actor,
    feedback,
    hex_id,
    interaction,
    number,
    safe_id,
    sha1,
    source_time,
    usage,
    user_id,
)
from rlops.observe.importers.messages import arguments_object, messages, system_text, tool_definitions
from rlops.observe.importers.source import Where, loads

READ_UNIT = "spans and log records"
EVALUATION = "gen_ai.evaluation.result"
MESSAGES = ("gen_ai.input.messages", "gen_ai.output.messages")
_MODEL_KEYS = {"gen_ai.operation.name", "gen_ai.input.messages", "gen_ai.output.messages",
               "gen_ai.system_instructions", "gen_ai.tool.definitions", "gen_ai.conversation.id", "gen_ai.agent.name",
               "gen_ai.agent.version", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.response.id",
               "gen_ai.response.finish_reasons", "user.id", "enduser.id", "error.type"}
_TOOL_KEYS = {"gen_ai.operation.name", "gen_ai.tool.name", "gen_ai.tool.call.id", "gen_ai.tool.call.arguments",
              "gen_ai.tool.call.result", "error.type"}
_EVAL_KEYS = {"gen_ai.evaluation.name", "gen_ai.evaluation.score.value", "gen_ai.evaluation.score.label",
              "gen_ai.evaluation.explanation", "gen_ai.response.id", "gen_ai.request.model", "gen_ai.response.model"}
_DONE = {None, "stop", "tool_call", "tool_calls"}


@dataclass
class Span:
    where: Where
    trace_id: str
    span_id: str
    parent: str | None
    name: str
    start: int | None
    end: int | None
    attrs: dict[str, Any]
    events: list[dict[str, Any]]
    error: str | None  # the status message (or error.type) when the status is ERROR
    resource: dict[str, Any]

    @property
    def operation(self) -> Any:
        return self.attrs.get("gen_ai.operation.name")

    @property
    def is_tool(self) -> bool:
        return self.operation == "execute_tool"

    @property
    def is_model(self) -> bool:
        return not self.is_tool and any(k in self.attrs for k in MESSAGES)


# ---- OTLP/JSON decoding ------------------------------------------------------------------------------------------

def _value(v: Any, where: str) -> Any:
    """An OTLP AnyValue as a Python value."""
    if not isinstance(v, dict):
        raise Malformed(f"{where}: an attribute value must be an AnyValue object")
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "intValue" in v:
        try:
            return int(v["intValue"])  # int64 is a JSON string in OTLP/JSON
        except (TypeError, ValueError):
            raise Malformed(f"{where}: intValue {v['intValue']!r} is not an integer") from None
    if "doubleValue" in v:
        try:
            return float(v["doubleValue"])
        except (TypeError, ValueError):
            raise Malformed(f"{where}: doubleValue {v['doubleValue']!r} is not a number") from None
    if "arrayValue" in v:
        return [_value(x, f"{where}[{i}]") for i, x in enumerate((v["arrayValue"] or {}).get("values") or [])]
    if "kvlistValue" in v:
        return _attributes((v["kvlistValue"] or {}).get("values") or [], where)
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _attributes(items: Any, where: str) -> dict[str, Any]:
    if not isinstance(items, list):
        raise Malformed(f"{where}: attributes must be a list of {{key, value}}")
    out: dict[str, Any] = {}
    for i, kv in enumerate(items):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise Malformed(f"{where}[{i}]: an attribute needs a string key")
        out[kv["key"]] = _value(kv.get("value", {}), f"{where}.{kv['key']}")
    return out


def _nanos(value: Any, where: str) -> int | None:
    if value in (None, "", 0, "0"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Malformed(f"{where}: {value!r} is not a time in Unix nanoseconds") from None


def _span_id(value: Any, length: int) -> str | None:
    """Hex ids as OTLP/JSON writes them; base64 ids (what protobuf's JSON mapping writes) are converted."""
    found = hex_id(value, length)
    if found is None and isinstance(value, str) and value:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        found = hex_id(raw.hex(), length) if len(raw) * 2 == length else None
    return found


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{what}: must be an object, not {type(value).__name__}")
    return value


def _items(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{what}: must be a list, not {type(value).__name__}")
    return value


def _span(raw: Any, where: Where, resource: dict[str, Any]) -> Span:
    if not isinstance(raw, dict):
        raise Malformed("a span must be an object")
    trace_id, span_id = _span_id(raw.get("traceId"), 32), _span_id(raw.get("spanId"), 16)
    if trace_id is None:
        raise Malformed(f"traceId: {raw.get('traceId')!r} is not a 32-hex-digit trace id")
    if span_id is None:
        raise Malformed(f"spanId: {raw.get('spanId')!r} is not a 16-hex-digit span id")
    attrs = _attributes(raw.get("attributes") or [], "attributes")
    events = []
    for i, e in enumerate(raw.get("events") or []):
        if not isinstance(e, dict):
            raise Malformed(f"events[{i}]: must be an object")
        events.append({"name": e.get("name"), "time": _nanos(e.get("timeUnixNano"), f"events[{i}].timeUnixNano"),
                       "attrs": _attributes(e.get("attributes") or [], f"events[{i}].attributes"), "index": i})
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    failed = status.get("code") in (2, "2", "STATUS_CODE_ERROR")
    error = (status.get("message") or attrs.get("error.type") or "error") if failed else None
    return Span(where, trace_id, span_id, _span_id(raw.get("parentSpanId"), 16), str(raw.get("name") or ""),
                _nanos(raw.get("startTimeUnixNano"), "startTimeUnixNano"),
                _nanos(raw.get("endTimeUnixNano"), "endTimeUnixNano"), attrs, events, error and str(error), resource)


def _spans(ctx: Context, source: Path) -> dict[str, dict[str, Span]]:
    traces: dict[str, dict[str, Span]] = {}
    logged: list[tuple[Where, str | None, str | None, dict[str, Any]]] = []
    for where, request in ctx.records(source, count=False):
        if isinstance(request, dict) and isinstance(request.get("resourceLogs"), list):
            logged.extend(_log_events(ctx, where, request["resourceLogs"]))
            continue
        if not isinstance(request, dict) or not isinstance(request.get("resourceSpans"), list):
            ctx.read += 1
            ctx.quarantine(where, "not an OTLP/JSON export: expected an object with resourceSpans or resourceLogs")
            continue
        for i, rs in enumerate(request["resourceSpans"]):
            here = where.at(f"resourceSpans[{i}]")
            try:
                rs = _object(rs, "resourceSpans[]")
                resource = _attributes(_object(rs.get("resource"), "resource").get("attributes") or [],
                                       "resource.attributes")
                scopes = _items(rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans"), "scopeSpans")
            except Malformed as e:
                ctx.read += 1
                ctx.quarantine(here, str(e))
                continue
            for j, ss in enumerate(scopes):
                try:
                    raws = _items(_object(ss, "scopeSpans[]").get("spans"), "spans")
                except Malformed as e:
                    ctx.read += 1
                    ctx.quarantine(here.at(f"scopeSpans[{j}]"), str(e))
                    continue
                for k, raw in enumerate(raws):
                    ctx.read += 1
                    place = here.at(f"scopeSpans[{j}].spans[{k}]")
                    try:
                        span = _span(raw, place, resource)
                    except Malformed as e:
                        ctx.quarantine(place, str(e))
                        continue
                    trace = traces.setdefault(span.trace_id, {})
                    if span.span_id in trace:
                        ctx.quarantine(place, f"spanId: {span.span_id} repeats the span at {trace[span.span_id].where}")
                        continue
                    trace[span.span_id] = span
    seen_logs: dict[str, Where] = {}  # an OTLP log record has no id: the same span, time, name and body is a repeat
    for where, trace_id, span_id, event in logged:  # an event record joins the span it names
        key = json.dumps([trace_id, span_id, {k: v for k, v in event.items() if k != "where"}], sort_keys=True,
                         default=str)
        if key in seen_logs:
            ctx.quarantine(where, f"log record: repeats the one at {seen_logs[key]} (same span, time and content)")
            continue
        seen_logs[key] = where
        span = traces.get(trace_id or "", {}).get(span_id or "")
        if span is None:  # not exported here: the event may still name its answer by gen_ai.response.id
            span = Span(where, trace_id or "0" * 32, span_id or sha1(str(where))[:16], None, "", None, None, {}, [],
                        None, {})
            traces.setdefault(span.trace_id, {}).setdefault(span.span_id, span)
        span.events.append({**event, "index": len(span.events)})
    return traces


def _log_events(ctx: Context, where: Where, resource_logs: list[Any]) -> Iterator[tuple]:
    """gen_ai.evaluation.result events sent as OTLP log records (the Logs API form of GenAI events)."""
    for i, rl in enumerate(resource_logs):
        try:
            scopes = _items(_object(rl, "resourceLogs[]").get("scopeLogs"), "scopeLogs")
        except Malformed as e:
            ctx.read += 1
            ctx.quarantine(where.at(f"resourceLogs[{i}]"), str(e))
            continue
        for j, sl in enumerate(scopes):
            try:
                records = _items(_object(sl, "scopeLogs[]").get("logRecords"), "logRecords")
            except Malformed as e:
                ctx.read += 1
                ctx.quarantine(where.at(f"resourceLogs[{i}].scopeLogs[{j}]"), str(e))
                continue
            for k, rec in enumerate(records):
                ctx.read += 1
                place = where.at(f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]")
                try:
                    rec = _object(rec, "logRecords[]")
                    attrs = _attributes(rec.get("attributes") or [], "attributes")
                    when = _nanos(rec.get("timeUnixNano") or rec.get("observedTimeUnixNano"), "timeUnixNano")
                except Malformed as e:
                    ctx.quarantine(place, str(e))
                    continue
                name = rec.get("eventName") or attrs.get("event.name")
                if name != EVALUATION:
                    ctx.skipped[f"log record that is not {EVALUATION} ({name or 'no event name'})"] += 1
                    continue
                yield place, _span_id(rec.get("traceId"), 32), _span_id(rec.get("spanId"), 16), \
                    {"name": EVALUATION, "time": when, "attrs": attrs, "where": place}


# ---- conversion ----------------------------------------------------------------------------------------------------

def convert(ctx: Context, source: Path) -> Iterator[tuple[str, dict[str, Any], Where]]:
    traces = _spans(ctx, source)
    done: list[tuple[dict[str, Span], dict[str, Span], dict[str, list[str]]]] = []
    for spans in traces.values():
        top_of: dict[str, Span] = {}
        made: dict[str, list[str]] = {}
        yield from _trace(ctx, spans, top_of, made)
        done.append((spans, top_of, made))
    # evaluators often report from their own trace: gen_ai.response.id finds the evaluated span in any trace
    by_response: dict[str, list[str]] = {}
    for spans, top_of, made in done:
        for span in sorted(spans.values(), key=lambda s: (s.start or 0, s.span_id)):
            rid = span.attrs.get("gen_ai.response.id")
            if isinstance(rid, str) and span.span_id in top_of and top_of[span.span_id].span_id in made:
                by_response.setdefault(rid, made[top_of[span.span_id].span_id])
    for spans, top_of, made in done:
        yield from _evaluations(ctx, spans, top_of, made, by_response)


def _ancestors(span: Span, spans: dict[str, Span]) -> Iterator[Span]:
    seen = {span.span_id}
    while span.parent and span.parent in spans and span.parent not in seen:
        span = spans[span.parent]
        seen.add(span.span_id)
        yield span


def _json_attr(span: Span, key: str) -> Any:
    """A JSON-valued GenAI attribute: structured already, or a JSON string (plain-text system instructions stay)."""
    value = span.attrs.get(key)
    if not isinstance(value, str):
        return value
    if key == "gen_ai.system_instructions" and not value.lstrip().startswith(("[", "{")):
        return value
    try:
        return loads(value)
    except ValueError as e:
        raise Malformed(f"attributes.{key}: not JSON: {e}") from None


def _trace(ctx: Context, spans: dict[str, Span], top_of: dict[str, Span], made: dict[str, list[str]]) -> Iterator:
    """Interactions of one trace; fills `top_of` (model span id -> its top span) and `made` (top -> ids)."""
    order = sorted(spans.values(), key=lambda s: (s.start or 0, s.span_id))
    tops: list[Span] = []
    for span in order:
        if span.is_model:
            outer = [a for a in _ancestors(span, spans) if a.is_model]
            top = outer[-1] if outer else span
            top_of[span.span_id] = top
            if top is span:
                tops.append(span)
            else:
                ctx.skipped["model span inside an imported span (folded into it)"] += 1
        elif not span.is_tool and not any(e["name"] == EVALUATION for e in span.events):
            ctx.skipped[f"span without GenAI messages ({span.operation or span.name or 'unnamed'})"] += 1
    steps = _steps(ctx, order, spans, top_of, tops)
    for top in tops:
        try:
            with ctx.tentative():
                records = _interactions(ctx, top, spans, top_of, steps.get(top.span_id, []))
        except Malformed as e:
            ctx.quarantine(top.where, str(e))
            continue
        made[top.span_id] = [r["interaction_id"] for r in records]
        for record in records:
            yield "interaction", record, top.where


def _top_for(span: Span, spans: dict[str, Span], top_of: dict[str, Span]) -> Span | None:
    if span.span_id in top_of:
        return top_of[span.span_id]
    return next((top_of[a.span_id] for a in _ancestors(span, spans) if a.span_id in top_of), None)


def _call_ids(span: Span, key: str) -> set[str]:
    try:
        msgs = _json_attr(span, key)
    except Malformed:
        return set()
    ids = set()
    for m in msgs if isinstance(msgs, list) else []:
        for p in (m.get("parts") or []) if isinstance(m, dict) else []:
            if isinstance(p, dict) and p.get("type") == "tool_call" and isinstance(p.get("id"), str):
                ids.add(p["id"].strip())
    return ids


def _steps(ctx: Context, order: list[Span], spans: dict[str, Span], top_of: dict[str, Span],
           tops: list[Span]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    calls = [(t, _call_ids(t, "gen_ai.output.messages"), _call_ids(t, "gen_ai.input.messages")) for t in tops]
    for span in order:
        if not span.is_tool:
            continue
        call_id = span.attrs.get("gen_ai.tool.call.id")
        owner = _top_for(span, spans, top_of)
        if owner is None and isinstance(call_id, str):
            owner = next((t for t, made, _ in calls if call_id in made), None) or \
                next((t for t, _, seen in calls if call_id in seen), None)
        if owner is None:
            ctx.skipped["execute_tool span with no interaction to attach to"] += 1
            continue
        step: dict[str, Any] = {"type": "tool_call",
                                "name": str(span.attrs.get("gen_ai.tool.name") or
                                            span.name.removeprefix("execute_tool ").strip() or "tool")}
        if isinstance(call_id, str) and call_id:
            step["call_id"] = call_id
        step["arguments"] = arguments_object(span.attrs.get("gen_ai.tool.call.arguments"))
        if "gen_ai.tool.call.result" in span.attrs:
            result = span.attrs["gen_ai.tool.call.result"]
            if isinstance(result, str):
                try:
                    result = loads(result)
                except ValueError:
                    pass  # a plain-text result stays text
            step["result"] = result
        if span.error:
            step["error"] = span.error
        if span.start and span.end and span.end >= span.start:
            step["duration_ms"] = round((span.end - span.start) / 1e6, 3)
        ctx.note_unmapped(span.attrs, _TOOL_KEYS, "tool_span.attributes.")
        out.setdefault(owner.span_id, []).append(step)
    return out


def _inherited(span: Span, spans: dict[str, Span], key: str) -> Any:
    for s in (span, *_ancestors(span, spans)):
        if s.attrs.get(key) not in (None, ""):
            return s.attrs[key]
    return None


def _interactions(ctx: Context, top: Span, spans: dict[str, Span], top_of: dict[str, Span],
                  steps: list[dict]) -> list[dict[str, Any]]:
    raw_in, raw_out = _json_attr(top, "gen_ai.input.messages"), _json_attr(top, "gen_ai.output.messages")
    if raw_in is None:
        raise Malformed("attributes.gen_ai.input.messages: missing (turn on content capture in the instrumentation)")
    if raw_out is None:
        raise Malformed("attributes.gen_ai.output.messages: missing (the call failed, or content capture is off)")
    if not isinstance(raw_out, list) or not raw_out:
        raise Malformed("attributes.gen_ai.output.messages: must be a non-empty list of messages")
    prompt = messages(raw_in, ctx, "user", "gen_ai.input.messages")
    tokens = usage(top.attrs.get("gen_ai.usage.input_tokens"), top.attrs.get("gen_ai.usage.output_tokens"))
    if tokens is None:  # an agent span without usage: the sum of the model calls folded into it
        nested = [s for s in spans.values() if top_of.get(s.span_id) is top and s is not top]
        tokens = usage(*(sum(number(s.attrs.get(k)) or 0 for s in nested) or None
                         for k in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")))
    user = _inherited(top, spans, "user.id") or _inherited(top, spans, "enduser.id")
    conversation = _inherited(top, spans, "gen_ai.conversation.id")
    agent = ctx.agent(_inherited(top, spans, "gen_ai.agent.name"), _inherited(top, spans, "gen_ai.agent.version"),
                      fallback_name=top.resource.get("service.name") if isinstance(top.resource.get("service.name"),
                                                                                   str) else None)
    when = source_time(ctx, top.end or top.start, "endTimeUnixNano")
    base = f"otel-{top.trace_id}-{top.span_id}"
    shared = dict(trace_id=top.trace_id, span_id=top.span_id, timestamp=when, agent=agent,
                  conversation_id=safe_id(conversation) if conversation else None, user=user_id(user),
                  system_instructions=system_text(_json_attr(top, "gen_ai.system_instructions"), ctx,
                                                  "gen_ai.system_instructions"),
                  tool_definitions=tool_definitions(_json_attr(top, "gen_ai.tool.definitions"), ctx,
                                                    "gen_ai.tool.definitions"),
                  input_messages=prompt, steps=steps)
    ctx.note_unmapped(top.attrs, _MODEL_KEYS, "attributes.")
    for e in top.events:
        if e["name"] != EVALUATION:
            ctx.unmapped[f"events.{e['name']}"] += 1
    records = []
    for i, choice in enumerate(raw_out):
        outcome: dict[str, Any] = {"status": "error" if top.error else "ok"}
        if top.start and top.end and top.end >= top.start:
            outcome["latency_ms"] = round((top.end - top.start) / 1e6, 3)
        finish = choice.get("finish_reason") if isinstance(choice, dict) else None
        details = [f"finish_reason: {finish}"] if finish not in _DONE else []
        if top.error:
            details.insert(0, top.error)
        if details:
            outcome["detail"] = "; ".join(details)
        records.append(interaction(
            interaction_id=base if len(raw_out) == 1 else f"{base}.{i}",
            output_messages=messages([choice], ctx, "assistant", f"gen_ai.output.messages[{i}]"),
            usage=tokens if len(raw_out) == 1 else None, outcome=outcome, **shared))
    return records


def _evaluations(ctx: Context, spans: dict[str, Span], top_of: dict[str, Span], made: dict[str, list[str]],
                 by_response: dict[str, list[str]]) -> Iterator:
    for span in sorted(spans.values(), key=lambda s: (s.start or 0, s.span_id)):
        for e in span.events:
            if e["name"] != EVALUATION:
                continue
            where = e.get("where") or span.where.at(f"events[{e['index']}]")
            rid = e["attrs"].get("gen_ai.response.id")
            top = _top_for(span, spans, top_of)
            ids = by_response.get(rid) if isinstance(rid, str) else None
            ids = ids or (made.get(top.span_id) if top is not None else None)
            if not ids:
                ctx.quarantine(where, "gen_ai.evaluation.result: about no imported interaction (the event is not on "
                                      "or under an imported span, and its gen_ai.response.id matches none)")
                continue
            try:
                with ctx.tentative():
                    event = _judge(ctx, span, e, ids[0])
            except Malformed as err:
                ctx.quarantine(where, str(err))
                continue
            ctx.note_unmapped(e["attrs"], _EVAL_KEYS, "evaluation.attributes.")
            yield "feedback", event, where


def _judge(ctx: Context, span: Span, e: dict[str, Any], iid: str) -> dict[str, Any]:
    attrs = e["attrs"]
    name = attrs.get("gen_ai.evaluation.name")
    if not isinstance(name, str) or not name:
        raise Malformed("gen_ai.evaluation.name: missing (the convention requires it)")
    score, label = attrs.get("gen_ai.evaluation.score.value"), attrs.get("gen_ai.evaluation.score.label")
    explanation = attrs.get("gen_ai.evaluation.explanation")
    when = source_time(ctx, e["time"] or span.end or span.start, "events.timeUnixNano")
    event_id = f"otel-{span.trace_id}-{span.span_id}-eval-{e['index']}"
    who = actor("judge", name)
    if number(score) is None:
        if not label:
            raise Malformed(f"gen_ai.evaluation.score.value: {score!r} is not a number, and there is no label")
        text = f"{name}: {label}" + (f"\n{explanation}" if explanation else "")
        return feedback(event_id=event_id, interaction_id=iid, timestamp=when, actor=who, kind="comment",
                        details={"text": text})
    model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model") or "unspecified"
    details: dict[str, Any] = {"model": str(model), "rubric": name, "score": score}
    text = ": ".join(str(x) for x in (label, explanation) if x)
    if text:
        details["explanation"] = text
    return feedback(event_id=event_id, interaction_id=iid, timestamp=when, actor=who, kind="judge", details=details)


register(Importer("importer", "otel", description="OpenTelemetry GenAI spans exported as OTLP/JSON (.json or .jsonl)",
                   reads=SOURCE, writes=WRITES, function=convert,
                  read_unit=READ_UNIT))
