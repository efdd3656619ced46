"""OpenAI Chat Completions logs -> rlops interactions (one per choice).

Accepted records (JSONL lines, or elements of a JSON array), in any mix:
- a logged call: {"request": {model, messages, tools, user, ...}, "response": {id, created, model, choices, usage}},
  optionally with "timestamp" and "latency_ms" beside them; a response wrapped as {"status_code", "body"} is unwrapped;
- the Batch API: input lines {"custom_id", "method", "url", "body": REQUEST} and output lines
  {"custom_id", "response": {"status_code", "body": RESPONSE}, "error"}, joined on custom_id (give the folder that
  holds both files).

| OpenAI                                      | rlops                                                      |
|---------------------------------------------|------------------------------------------------------------|
| `response.id` (+ `.N` when n > 1 choices)   | interaction_id `openai-<id>`; without an id, one derived from file, line and content |
| `response.created` (else `timestamp`)       | timestamp                                                  |
| `request.messages`                          | input_messages (tool calls, tool results, names kept)      |
| `request.tools` / legacy `request.functions`| tool_definitions                                           |
| `response.choices[i].message`               | output_messages (content, tool_calls, refusal as content)  |
| `choices[i].finish_reason` other than stop/tool_calls | outcome.detail `finish_reason: length`           |
| `response.usage.prompt_tokens` / `completion_tokens` | usage.input_tokens / output_tokens (only with one choice) |
| `latency_ms` beside request/response        | outcome.latency_ms                                         |
| `request.user` (or `safety_identifier`)     | user                                                       |
| (none)                                      | agent {name: --policy or 'openai', version: --agent-version or 'imported'} |

Quarantined: a record that is neither shape, a failed call (error or non-200 status), messages that are not chat
messages, a Batch output whose request is missing, a Batch request or output line whose custom_id repeats one
already read (the first counts; a repeated log line gives a repeated response id, quarantined by the import).
Unmapped (counted): request parameters (`model`, `temperature`,
...) and response fields (`model`, `system_fingerprint`, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlops.components import Importer, register
from rlops.observe.importers import SOURCE, WRITES
from rlops.observe.importers.builders import (
    Context,
    Malformed,
    derived_id,
    interaction,
    number,
    row_key,
    safe_id,
    source_time,
    usage,
    user_id,
)
from rlops.observe.importers.messages import messages, tool_definitions
from rlops.observe.importers.source import Where

READ_UNIT = "records"
_QUIET_RESPONSE = {"id", "created", "choices", "usage", "object"}
_DONE = {None, "stop", "tool_calls", "function_call"}


def convert(ctx: Context, source: Path) -> Iterator[tuple[str, dict[str, Any], Where]]:
    batch_requests: dict[str, tuple[Where, dict]] = {}
    batch_outputs: list[tuple[Where, dict]] = []
    output_ids: dict[str, Where] = {}
    for where, rec in ctx.records(source):
        if not isinstance(rec, dict):
            ctx.quarantine(where, f"a record must be a JSON object, not {type(rec).__name__}")
        elif "custom_id" in rec and "body" in rec:
            if str(rec["custom_id"]) in batch_requests:  # the first request line counts
                ctx.quarantine(where, f"custom_id: {rec['custom_id']!r} repeats the request from "
                                      f"{batch_requests[str(rec['custom_id'])][0]}")
            else:
                batch_requests[str(rec["custom_id"])] = (where, rec)
        elif "custom_id" in rec and ("response" in rec or "error" in rec):
            if str(rec["custom_id"]) in output_ids:
                ctx.quarantine(where, f"custom_id: {rec['custom_id']!r} repeats the output from "
                                      f"{output_ids[str(rec['custom_id'])]}")
            else:
                output_ids[str(rec["custom_id"])] = where
                batch_outputs.append((where, rec))
        elif "request" in rec and "response" in rec:
            yield from _guarded(ctx, where, rec, rec["request"], rec["response"])
        else:
            ctx.quarantine(where, "not a Chat Completions log: expected {request, response}, or a Batch API "
                                  "input line {custom_id, body} or output line {custom_id, response}")
    for where, out in batch_outputs:
        found = batch_requests.pop(str(out["custom_id"]), None)
        if found is None:
            ctx.quarantine(where, f"custom_id: {out['custom_id']!r} has no request line; import the Batch input "
                                  "file together with the output file (give their folder as PATH)")
            continue
        if out.get("error"):
            ctx.quarantine(where, f"error: the batch request failed: {_error_text(out['error'])}")
            continue
        yield from _guarded(ctx, where, {**found[1], **out}, found[1]["body"], out.get("response"))
    if batch_requests:
        ctx.skipped["Batch API request without an output line"] += len(batch_requests)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error)


def _guarded(ctx: Context, where: Where, rec: dict, request: Any, response: Any) -> Iterator:
    try:
        with ctx.tentative():
            out = list(_calls(ctx, where, rec, request, response))
    except Malformed as e:
        ctx.quarantine(where, str(e))
        return
    yield from out


def _calls(ctx: Context, where: Where, rec: dict, request: Any, response: Any) -> Iterator:
    if not isinstance(request, dict):
        raise Malformed("request: must be an object with messages")
    if isinstance(response, dict) and "body" in response:
        status = response.get("status_code", 200)
        if status != 200:
            body = response.get("body")
            raise Malformed(f"response.status_code: {status}: the call failed: "
                            f"{_error_text(body.get('error') if isinstance(body, dict) else body)}")
        response = response["body"]
    if not isinstance(response, dict):
        raise Malformed("response: must be an object")
    if response.get("error"):
        raise Malformed(f"response.error: the call failed: {_error_text(response['error'])}")
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        raise Malformed("response.choices: missing or empty")
    prompt = messages(request.get("messages"), ctx, "user", "request.messages")
    tools = tool_definitions(request.get("tools") or request.get("functions"), ctx, "request.tools")
    when = source_time(ctx, response.get("created") or rec.get("timestamp"), "timestamp")
    base = safe_id("openai", response["id"]) if isinstance(response.get("id"), str) and response["id"] else \
        derived_id("openai", row_key(where, rec))
    user = request.get("user") or request.get("safety_identifier")
    latency = number(rec.get("latency_ms"))
    ctx.note_unmapped(request, {"messages", "tools", "functions", "user", "safety_identifier"}, "request.")
    ctx.note_unmapped(response, _QUIET_RESPONSE, "response.")
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            raise Malformed(f"response.choices[{i}].message: missing")
        outcome: dict[str, Any] = {"status": "ok"}
        if latency is not None and latency >= 0:
            outcome["latency_ms"] = latency
        if choice.get("finish_reason") not in _DONE:
            outcome["detail"] = f"finish_reason: {choice['finish_reason']}"
        index = choice.get("index", i)
        yield "interaction", interaction(
            interaction_id=base if len(choices) == 1 else f"{base}.{index}",
            timestamp=when, agent=ctx.agent(), user=user_id(user),
            tool_definitions=tools, input_messages=prompt,
            output_messages=messages(choice["message"], ctx, "assistant", f"response.choices[{i}].message"),
            usage=usage(*_tokens(response.get("usage"))) if len(choices) == 1 else None, outcome=outcome), where


def _tokens(u: Any) -> tuple[Any, Any]:
    if not isinstance(u, dict):
        return None, None
    return u.get("prompt_tokens", u.get("input_tokens")), u.get("completion_tokens", u.get("output_tokens"))


register(Importer("importer", "openai", description="OpenAI Chat Completions request/response logs, or Batch API input + output files",
                   reads=SOURCE, writes=WRITES, function=convert,
                  read_unit=READ_UNIT))
