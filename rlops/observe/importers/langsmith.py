"""LangSmith runs export + feedback export -> rlops interactions (one per llm run), tool steps and feedback.

Accepted records (JSONL lines or JSON array elements, in any mix, across the files of a folder): runs
({id, trace_id, parent_run_id, run_type, inputs, outputs, ...}, as `Client.list_runs` returns them), feedback
({id, run_id, key, score, value, comment, correction, feedback_source, ...}, as `Client.list_feedback` returns
them), and wrappers {"runs": [...], "feedback": [...]}.

| LangSmith                                   | rlops                                                      |
|---------------------------------------------|------------------------------------------------------------|
| run with run_type `llm`                     | one interaction, interaction_id `langsmith-<run id>`       |
| trace without llm runs: its root run, when its inputs/outputs are messages | one interaction               |
| `inputs.messages` (LangChain or OpenAI messages) / `inputs.prompts` | input_messages                     |
| `outputs` (LLMResult generations, OpenAI choices, messages, output) | output_messages (tool_calls kept)  |
| `inputs.tools`, `extra.invocation_params.tools` / `functions` | tool_definitions                         |
| `end_time` (else `start_time`); end - start | timestamp; outcome.latency_ms                              |
| `error`                                     | outcome {status: error, detail}                            |
| `prompt_tokens`/`completion_tokens`, `llm_output.token_usage`, `usage_metadata` | usage                  |
| `trace_id` (UUID)                           | trace_id (32 hex)                                          |
| `extra.metadata.thread_id` / `session_id` / `conversation_id`, `user_id` | conversation_id, user         |
| root run `name`; `extra.metadata.revision_id` / `agent_version` | agent.name (unless --policy), agent.version |
| run with run_type `tool` (name, inputs, outputs.output, error) | a step of the llm run that called it: the last one that started before it |
| feedback `correction`                       | edit {output_messages: the corrected output}               |
| feedback numeric `score`                    | rating {value, scale}: `feedback_config` min/max, else --scale KEY=LO,HI, else the smallest usual scale holding every value of the key |
| feedback boolean `score`                    | rating {value 0/1, scale [0, 1]}                           |
| feedback from a model (`feedback_source.type` model) | judge {model, rubric: key, score, explanation: comment} |
| feedback sharing a `feedback_group_id` (preference) | pairwise (2 runs) or ranking (more), best score first |
| feedback `value` without a score            | comment {text: '<key>: <value>'}                           |
| feedback `comment`                          | comment event (for ratings; a judge keeps it as explanation) |
| feedback `run_id`                           | that llm run's interaction; another run of the trace: the trace's last llm run |
| `feedback_source` type / user               | actor user:<user_id>, api:<user or key>, judge:<key>       |

Quarantined: unreadable records, a run or feedback whose id repeats one already read (the first copy counts),
llm runs whose inputs or outputs are not chat messages (or that failed without output), feedback about runs that
are not in the export.
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
from rlops.observe.importers.source import Where

READ_UNIT = "records"
_QUIET_RUN = {"id", "trace_id", "parent_run_id", "run_type", "inputs", "outputs", "start_time", "end_time", "error",
              "extra", "name", "prompt_tokens", "completion_tokens", "total_tokens", "dotted_order", "child_run_ids",
              "session_id", "status", "events", "serialized", "app_path", "feedback_stats", "first_token_time",
              "prompt_cost", "completion_cost", "total_cost", "parent_run_ids", "trace_min_start_time",
              "trace_max_start_time", "inputs_preview", "outputs_preview", "in_dataset", "manifest_id",
              "execution_order", "child_runs", "last_queued_at", "share_token", "prompt_token_details",
              "completion_token_details", "prompt_cost_details", "completion_cost_details", "tenant_id",
              "trace_first_received_at", "ttl_seconds", "trace_upgrade", "thread_id"}
_QUIET_FEEDBACK = {"id", "run_id", "trace_id", "key", "score", "value", "comment", "correction", "feedback_source",
                   "created_at", "modified_at", "session_id", "feedback_group_id", "feedback_config", "extra",
                   "start_time", "comparative_experiment_id", "error"}


def convert(ctx: Context, source: Path) -> Iterator[tuple[str, dict[str, Any], Where]]:
    runs: dict[str, tuple[Where, dict]] = {}
    notes: list[tuple[Where, dict]] = []
    note_ids: dict[str, Where] = {}

    def first(where: Where, obj: dict, seen: dict, what: str) -> bool:
        """True for the first record with this id; a repeat is quarantined, naming the first."""
        before = seen.get(obj["id"])
        if before is not None:
            ctx.quarantine(where, f"id: {obj['id']} repeats the {what} from "
                                  f"{before[0] if isinstance(before, tuple) else before}")
            return False
        return True

    def add(where: Where, obj: Any) -> None:
        if not isinstance(obj, dict):
            ctx.quarantine(where, f"a record must be a JSON object, not {type(obj).__name__}")
        elif "id" not in obj and any(isinstance(obj.get(k), list) for k in ("runs", "feedback")):
            for key in ("runs", "feedback"):
                for i, item in enumerate(obj.get(key) or []):
                    add(where.at(f"{key}[{i}]"), item)
        elif not isinstance(obj.get("id"), str) or not obj["id"]:
            ctx.quarantine(where, "id: missing; every LangSmith run and feedback has one")
        elif "run_type" in obj:
            if first(where, obj, runs, "run"):
                runs[obj["id"]] = (where, obj)
        elif "key" in obj:
            if first(where, obj, note_ids, "feedback"):
                note_ids[obj["id"]] = where
                notes.append((where, obj))
        else:
            ctx.quarantine(where, "neither a run (run_type) nor feedback (key)")

    for where, obj in ctx.records(source):
        add(where, obj)
    traces: dict[str, list[tuple[Where, dict]]] = {}
    for where, run in runs.values():
        traces.setdefault(str(run.get("trace_id") or run["id"]), []).append((where, run))
    target: dict[str, str] = {}  # run id -> the interaction its feedback is about
    for trace_id, members in traces.items():
        yield from _trace(ctx, trace_id, members, target)
    yield from _feedback(ctx, notes, target)


def _order(run: dict) -> tuple:
    return (epoch(run.get("start_time")) or 0, str(run.get("dotted_order") or ""), run["id"])


def _trace(ctx: Context, trace_id: str, members: list[tuple[Where, dict]], target: dict[str, str]) -> Iterator:
    members.sort(key=lambda m: _order(m[1]))
    root = next((r for _, r in members if not r.get("parent_run_id")), members[0][1])
    llms = [m for m in members if m[1].get("run_type") == "llm"]
    tools = [r for _, r in members if r.get("run_type") == "tool"]
    ctx.skipped.update(f"run_type {r.get('run_type')}" for _, r in members
                       if r.get("run_type") not in ("llm", "tool") and r is not root)
    if not llms:
        llms = [m for m in members if m[1] is root]
    steps = attach_steps([(epoch(r.get("start_time")) or 0, r["id"]) for _, r in llms],
                         [(epoch(t.get("start_time")) or 0, _step(ctx, t))
                          for t in tools])
    made: list[str] = []
    failed = 0
    for where, run in llms:
        try:
            with ctx.tentative():
                record = _interaction(ctx, trace_id, root, run, steps[run["id"]])
        except Malformed as e:
            ctx.quarantine(where, str(e))
            failed += 1
            continue
        target[run["id"]] = record["interaction_id"]
        made.append(record["interaction_id"])
        yield "interaction", record, where
    if not made:
        if not failed:
            ctx.skipped["trace without an llm run whose messages could be read"] += 1
        return
    for _, run in members:  # feedback on the root, a chain or a tool run is about the trace's final answer
        target.setdefault(run["id"], made[-1])


def _step(ctx: Context, run: dict) -> dict[str, Any]:
    outputs = run.get("outputs")
    step: dict[str, Any] = {"type": "tool_call", "name": text_or_none(run.get("name")) or "tool",
                            "arguments": arguments_object(_unwrap(run.get("inputs"), "input"))}
    if outputs is not None:
        step["result"] = _unwrap(outputs, "output")
    if run.get("error"):
        step["error"] = str(run["error"])
    duration = millis_between(run.get("start_time"), run.get("end_time"))
    if duration is not None:
        step["duration_ms"] = duration
    ctx.note_unmapped(run, _QUIET_RUN | {"tags"}, "tool_run.")
    return step


def _unwrap(value: Any, key: str) -> Any:
    """LangChain tools log {"input": ...} and {"output": ...}; keep what is inside."""
    if isinstance(value, dict) and set(value) == {key}:
        return value[key]
    return value


def _metadata(run: dict) -> dict[str, Any]:
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    return extra.get("metadata") if isinstance(extra.get("metadata"), dict) else {}


def _interaction(ctx: Context, trace_id: str, root: dict, run: dict, steps: list[dict]) -> dict[str, Any]:
    inputs = run.get("inputs") if isinstance(run.get("inputs"), dict) else {}
    outputs = run.get("outputs")
    if not outputs:
        raise Malformed(f"outputs: missing (the run failed: {run['error']})" if run.get("error") else
                        "outputs: missing")
    if "messages" in inputs:
        prompt = messages(inputs["messages"], ctx, "user", "inputs.messages")
    elif isinstance(inputs.get("prompts"), list) and inputs["prompts"]:
        prompt = messages(inputs["prompts"][0], ctx, "user", "inputs.prompts[0]")
    elif "input" in inputs or "question" in inputs:
        prompt = messages(inputs.get("input", inputs.get("question")), ctx, "user", "inputs.input")
    else:
        raise Malformed("inputs: no messages, prompts or input")
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    params = extra.get("invocation_params") if isinstance(extra.get("invocation_params"), dict) else {}
    tools = tool_definitions(inputs.get("tools") or params.get("tools") or params.get("functions"), ctx, "tools")
    meta = {**_metadata(root), **_metadata(run)}
    answer = output_messages(outputs, ctx, "outputs")
    outcome: dict[str, Any] = {"status": "error" if run.get("error") else "ok"}
    latency = millis_between(run.get("start_time"), run.get("end_time"))
    if latency is not None:
        outcome["latency_ms"] = latency
    if run.get("error"):
        outcome["detail"] = str(run["error"])
    conversation = next((meta[k] for k in ("thread_id", "session_id", "conversation_id") if meta.get(k)), None)
    user = meta.get("user_id")
    ctx.note_unmapped(run, _QUIET_RUN, "run.")
    ctx.note_unmapped(inputs, {"messages", "prompts", "input", "question", "tools"}, "run.inputs.")
    return interaction(
        interaction_id=safe_id("langsmith", run["id"]),
        conversation_id=safe_id(conversation) if conversation else None,
        trace_id=hex_id(trace_id, 32),
        timestamp=source_time(ctx, run.get("end_time") or run.get("start_time"), "timestamp"),
        agent=ctx.agent(root.get("name"), meta.get("revision_id") or meta.get("agent_version")),
        user=user_id(user), tool_definitions=tools, input_messages=prompt, output_messages=answer,
        steps=steps, usage=_usage(run, outputs, answer), outcome=outcome)


def _usage(run: dict, outputs: Any, answer: list[dict]) -> dict[str, int] | None:
    found = usage(run.get("prompt_tokens"), run.get("completion_tokens"))
    if found and not any(found.values()):
        found = None  # LangSmith writes 0 when it did not count
    if found or not isinstance(outputs, dict):
        return found
    llm_output = outputs.get("llm_output") if isinstance(outputs.get("llm_output"), dict) else {}
    for u in (llm_output.get("token_usage"), llm_output.get("usage"), outputs.get("usage")):
        if isinstance(u, dict):
            found = usage(u.get("prompt_tokens", u.get("input_tokens")),
                          u.get("completion_tokens", u.get("output_tokens")))
            if found:
                return found
    gens = outputs.get("generations")
    while isinstance(gens, list) and gens and isinstance(gens[0], list):
        gens = gens[0]
    message = gens[0].get("message") if isinstance(gens, list) and gens and isinstance(gens[0], dict) else None
    if isinstance(message, dict):
        meta = (message.get("kwargs") or message).get("usage_metadata")
        if isinstance(meta, dict):
            return usage(meta.get("input_tokens"), meta.get("output_tokens"))
    return None


def _feedback(ctx: Context, notes: list[tuple[Where, dict]], target: dict[str, str]) -> Iterator:
    numeric: dict[str, list[float]] = {}
    groups: dict[str, list[tuple[Where, dict]]] = {}
    for where, f in notes:
        if f.get("feedback_group_id") and number(f.get("score")) is not None:
            groups.setdefault(str(f["feedback_group_id"]), []).append((where, f))
        elif number(f.get("score")) is not None and not isinstance(f.get("score"), bool):
            numeric.setdefault(str(f["key"]), []).append(f["score"])
    scales = {key: score_scale(ctx, key, values) for key, values in sorted(numeric.items())}
    grouped = {id(f) for members in groups.values() for _, f in members}
    for where, f in notes:
        iid = target.get(str(f.get("run_id")))
        if iid is None:
            ctx.quarantine(where, f"run_id: {f.get('run_id')} is not an imported run (missing from the runs "
                                  "export, or quarantined)")
            continue
        try:
            with ctx.tentative():
                events = _events(ctx, f, iid, scales, id(f) in grouped)
        except Malformed as e:
            ctx.quarantine(where, str(e))
            continue
        yield from (("feedback", e, where) for e in events)
    for group_id, members in groups.items():
        yield from _preference(ctx, group_id, members, target)


def _who(f: dict) -> str:
    src = f.get("feedback_source") if isinstance(f.get("feedback_source"), dict) else {}
    user = src.get("user_id") or src.get("user_name")
    if src.get("type") == "model":
        return actor("judge", f.get("key"))
    if src.get("type") == "app":
        return actor("user", user)
    return actor("api", user or f.get("key"))


def _events(ctx: Context, f: dict, iid: str, scales: dict, in_group: bool) -> list[dict]:
    key = str(f.get("key"))
    when = source_time(ctx, f.get("created_at") or f.get("modified_at"), "feedback.created_at")
    who = _who(f)
    base = safe_id("langsmith", f["id"])
    score, comment = f.get("score"), f.get("comment") if isinstance(f.get("comment"), str) else None
    src = f.get("feedback_source") if isinstance(f.get("feedback_source"), dict) else {}
    ctx.note_unmapped(f, _QUIET_FEEDBACK, "feedback.")
    out: list[dict] = []

    def event(kind: str, details: dict, suffix: str = "") -> None:
        out.append(feedback(event_id=base + suffix, interaction_id=iid, timestamp=when, actor=who, kind=kind,
                            details=details))

    if f.get("correction") not in (None, "", {}):
        correction = f["correction"]
        event("edit", {"output_messages": output_messages(correction, ctx, "correction")
                       if not isinstance(correction, str) else [{"role": "assistant", "content": correction}]})
    if score is not None and not in_group:
        value = int(score) if isinstance(score, bool) else number(score)
        if value is None:
            raise Malformed(f"score: {score!r} is not a number or a boolean")
        scale = [0, 1] if isinstance(score, bool) else _scale(ctx, f, scales)
        if src.get("type") == "model":
            meta = src.get("metadata") if isinstance(src.get("metadata"), dict) else {}
            details = {"model": str(meta.get("ls_model_name") or meta.get("model") or "langsmith-evaluator"),
                       "rubric": key, "score": value, "scale": scale}
            if comment:
                details["explanation"] = comment
            event("judge", details)
            comment = None
        else:
            if not scale[0] <= value <= scale[1]:
                raise Malformed(f"score: {value} is outside the scale {scale} of key {key!r} "
                                f"(set --scale {key}=LO,HI)")
            event("rating", {"value": value, "scale": scale}, ":score")
    if f.get("value") not in (None, "") and score is None:
        value = f["value"] if isinstance(f["value"], str) else json.dumps(f["value"], ensure_ascii=False)
        event("comment", {"text": f"{key}: {value}"}, ":value")
    if comment and comment.strip():
        event("comment", {"text": comment}, ":comment")
    if not out and not in_group:
        ctx.skipped["feedback with no score, value, comment or correction"] += 1
    return out


def _scale(ctx: Context, f: dict, scales: dict) -> list[float]:
    config = f.get("feedback_config") if isinstance(f.get("feedback_config"), dict) else {}
    if number(config.get("min")) is not None and number(config.get("max")) is not None:
        ctx.scales[str(f.get("key"))] = [config["min"], config["max"]]  # the key's own declared scale wins
        return [config["min"], config["max"]]
    return list(scales.get(str(f.get("key")), (0, 1)))


def _preference(ctx: Context, group_id: str, members: list[tuple[Where, dict]], target: dict[str, str]) -> Iterator:
    """Feedback sharing a feedback_group_id compared runs: the best score is chosen."""
    scored = [(number(f["score"]), target[str(f.get("run_id"))], where, f) for where, f in members
              if str(f.get("run_id")) in target]
    best: dict[str, tuple] = {}
    for item in scored:
        best.setdefault(item[1], item)
    ranked = sorted(best.values(), key=lambda s: -s[0])
    if len(ranked) < 2 or ranked[0][0] == ranked[-1][0]:
        ctx.skipped["preference group with fewer than two runs, or all tied"] += 1
        return
    if len({s[0] for s in ranked}) < len(ranked):
        ctx.skipped["preference group with tied scores"] += 1
        return
    where, first = ranked[0][2], ranked[0][3]
    ids = [s[1] for s in ranked]
    event_id = safe_id("langsmith-group", group_id)
    when = source_time(ctx, first.get("created_at"), "feedback.created_at")
    if len(ids) == 2:
        details = {"chosen_id": ids[0], "rejected_id": ids[1]}
        yield "feedback", feedback(event_id=event_id, interaction_id=ids[0], timestamp=when, actor=_who(first),
                                   kind="pairwise", details=details), where
    else:
        yield "feedback", feedback(event_id=event_id, interaction_id=ids[0], timestamp=when, actor=_who(first),
                                   kind="ranking", details={"ranked_ids": ids}), where


register(Importer("importer", "langsmith", description="LangSmith runs export + feedback export",
                   reads=SOURCE, writes=WRITES, function=convert,
                  read_unit=READ_UNIT))
