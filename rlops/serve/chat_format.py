"""The OpenAI chat format at the server's edge: checking a request, turning its messages into record messages, and
putting a streamed answer back together into the one message the interaction record keeps."""

from __future__ import annotations

import json
from typing import Any, Iterable

from rlops.records import ROLES

OPENAI_ROLES = (*ROLES, "developer")  # developer: OpenAI's newer name for system; recorded as system


def request_problems(body: Any) -> list[tuple[str, str]]:
    """(field, what is wrong and the fix) for a /v1/chat/completions body; empty when it can be served."""
    if not isinstance(body, dict):
        return [("", "the body must be a JSON object with a `messages` list")]
    found: list[tuple[str, str]] = []
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        found.append(("messages", "required: a non-empty list of {role, content} objects"))
        messages = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            found.append((where, "must be an object with role and content"))
            continue
        if m.get("role") not in OPENAI_ROLES:
            found.append((f"{where}.role", f"{m.get('role')!r} is not a role; use one of: {', '.join(OPENAI_ROLES)}"))
        content = m.get("content")
        if content is None and not m.get("tool_calls"):
            found.append((f"{where}.content", "missing; give the message's text (null only with tool_calls)"))
        elif content is not None and not isinstance(content, (str, list)):
            found.append((f"{where}.content", "must be a string or a list of content parts"))
    for key, kind, fix in (("stream", bool, "true or false"), ("user", str, "a string: the end user's opaque id"),
                           ("model", str, "a string (the manifest decides the version; this is recorded)"),
                           ("tools", list, "a list of OpenAI tool definitions")):
        if key in body and body[key] is not None and not isinstance(body[key], kind):
            found.append((key, f"must be {fix}, not {json.dumps(body[key])[:40]}"))
    if isinstance(body.get("user"), str) and not 0 < len(body["user"]) <= 200:
        found.append(("user", "must be 1 to 200 characters (an opaque id); leave it out when the user is unknown"))
    for i, tool in enumerate(body.get("tools") or [] if isinstance(body.get("tools"), list) else []):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not (isinstance(tool, dict) and tool.get("type") == "function" and isinstance(fn, dict)
                and isinstance(fn.get("name"), str) and fn["name"]):
            found.append((f"tools[{i}]", 'must be {"type": "function", "function": {"name": ..., "parameters": {...}}}'))
    return found


def user_problems(user: str | None) -> list[tuple[str, str]]:
    """The X-Rlops-User header's problems (the routing key when the body has no `user`)."""
    if user is not None and not 0 < len(user) <= 200:
        return [("X-Rlops-User", "must be 1 to 200 characters (an opaque id); leave it out when the user is unknown")]
    return []


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")


def to_record(message: dict) -> dict:
    """An OpenAI message as the interaction record keeps it (rlops/spec/schemas/interaction.schema.json)."""
    role = "system" if message.get("role") == "developer" else message.get("role")
    out: dict[str, Any] = {"role": role, "content": _text(message.get("content"))}
    if message.get("name"):
        out["name"] = message["name"]
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [{"id": c.get("id") or f"call_{i}", "type": "function",
                              "function": {"name": (c.get("function") or {}).get("name") or "?",
                                           "arguments": (c.get("function") or {}).get("arguments") or ""}}
                             for i, c in enumerate(calls)]
    if role == "tool" and message.get("tool_call_id"):
        out["tool_call_id"] = message["tool_call_id"]
    if out["content"] is None and not calls:
        out["content"] = ""
    return out


def assemble(chunks: Iterable[dict]) -> tuple[dict, dict | None, str | None]:
    """(assistant message, usage or None, finish_reason) from chat.completion.chunk objects, as the client sees them
    joined: content concatenated, tool-call fragments joined by their index."""
    content: list[str] = []
    calls: dict[int, dict] = {}
    usage, finish = None, None
    for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                content.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call.get("index", len(calls)), {"id": None, "type": "function",
                                                                        "function": {"name": "", "arguments": ""}})
                slot["id"] = call.get("id") or slot["id"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) if content or not calls else None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return message, usage, finish


def usage_record(usage: dict | None) -> dict | None:
    """OpenAI usage -> the record's usage (OpenTelemetry names)."""
    if not usage:
        return None
    out = {"input_tokens": usage.get("prompt_tokens"), "output_tokens": usage.get("completion_tokens")}
    return {k: v for k, v in out.items() if isinstance(v, int) and v >= 0} or None
