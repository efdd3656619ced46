"""Chat messages, tool calls and tool definitions from other tools' shapes into the OpenAI chat format.

Accepted message shapes: OpenAI ({role, content, tool_calls, tool_call_id}), LangChain dicts ({type: human|ai|...})
and serialized LangChain objects ({lc: 1, id: [..., "AIMessage"], kwargs: {...}}), OpenTelemetry GenAI messages
({role, parts: [text | tool_call | tool_call_response ...]}), and content given as a list of blocks. Content that is
not text (images, audio, reasoning) is dropped and counted as unmapped, under `<prefix>content.<type>`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rlops.observe.importers.builders import Context, Malformed
from rlops.observe.importers.source import loads

ROLES = {"system": "system", "developer": "system", "user": "user", "human": "user", "assistant": "assistant",
         "ai": "assistant", "model": "assistant", "bot": "assistant", "tool": "tool", "function": "tool"}
LC_CLASSES = {"SystemMessage": "system", "HumanMessage": "user", "AIMessage": "assistant", "ToolMessage": "tool",
              "FunctionMessage": "tool", "SystemMessageChunk": "system", "HumanMessageChunk": "user",
              "AIMessageChunk": "assistant", "ToolMessageChunk": "tool"}
TEXT_BLOCKS = {"text", "input_text", "output_text"}
# keys that carry no training signal (ids, provider bookkeeping) and are not reported as unmapped
_QUIET = {"id", "type", "lc", "response_metadata", "usage_metadata", "example", "status", "finish_reason"}
_MAPPED = {"role", "content", "name", "tool_calls", "tool_call_id", "function_call", "refusal", "parts",
           "additional_kwargs", "invalid_tool_calls", "tool_use_id"}


def messages(value: Any, ctx: Context, default_role: str, prefix: str) -> list[dict[str, Any]]:
    """A list of OpenAI messages from a list, one message, a {messages: [...]} wrapper, or a bare string."""
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list) and "role" not in value:
        value = value["messages"]
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]  # LangChain chat model runs: one list of messages per prompt
    items = value if isinstance(value, list) else [value]
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        out.extend(message(item, ctx, default_role, f"{prefix}[{i}]"))
    return out


def message(m: Any, ctx: Context, default_role: str, where: str) -> list[dict[str, Any]]:
    """One source message as one or more OpenAI messages (an OTel message with tool results gives several)."""
    prefix = "message."
    if isinstance(m, str):
        return [{"role": default_role, "content": m}]
    if not isinstance(m, Mapping):
        raise Malformed(f"{where}: a message must be an object or a string, not {type(m).__name__}")
    if m.get("lc") == 1 and isinstance(m.get("id"), list) and isinstance(m.get("kwargs"), Mapping):
        cls = str(m["id"][-1]) if m["id"] else ""
        fields = m["kwargs"]
        role = LC_CLASSES.get(cls) or fields.get("role") or fields.get("type")
        if role is None:
            raise Malformed(f"{where}: LangChain class {cls!r} is not a chat message")
        ctx.note_unmapped(fields, _MAPPED | _QUIET, prefix)
        return [_openai(role, fields, ctx, where)]
    if isinstance(m.get("data"), Mapping) and isinstance(m.get("type"), str) and "content" in m["data"]:
        m = {**m["data"], "type": m["type"]}  # LangChain's messages_to_dict: {"type": "human", "data": {...}}
    if "parts" in m:
        return _from_parts(m, ctx, where)
    role = m.get("role") or m.get("type")
    if role is None:
        raise Malformed(f"{where}: message has no role")
    ctx.note_unmapped(m, _MAPPED | _QUIET, prefix)
    return [_openai(role, m, ctx, where)]


def _role(raw: Any, where: str) -> str:
    role = ROLES.get(str(raw).lower()) if isinstance(raw, str) else None
    if role is None:
        raise Malformed(f"{where}.role: {raw!r} is not a chat role (system, user, assistant, tool)")
    return role


def _openai(raw_role: Any, m: Mapping[str, Any], ctx: Context, where: str) -> dict[str, Any]:
    role = _role(raw_role, where)
    content, block_calls = _content(m.get("content"), ctx, where)
    if content is None and isinstance(m.get("refusal"), str):
        content = m["refusal"]  # the refusal is what the user saw
    calls = m.get("tool_calls")
    extra = m.get("additional_kwargs")
    if not calls and isinstance(extra, Mapping):
        calls = extra.get("tool_calls") or ([extra["function_call"]] if extra.get("function_call") else None)
        ctx.note_unmapped(extra, {"tool_calls", "function_call", "refusal"}, "message.additional_kwargs.")
    if not calls and isinstance(m.get("function_call"), Mapping):
        calls = [m["function_call"]]
    if not calls:
        calls = block_calls
    out: dict[str, Any] = {"role": role, "content": content}
    if isinstance(m.get("name"), str) and m["name"]:
        out["name"] = m["name"]
    if calls:
        if role != "assistant":
            raise Malformed(f"{where}.tool_calls: only assistant messages make tool calls, not {role}")
        out["tool_calls"] = [tool_call(c, ctx, f"{where}.tool_calls[{i}]", i) for i, c in enumerate(calls)]
    elif content is None:
        out["content"] = ""
    call_id = m.get("tool_call_id") or m.get("tool_use_id")
    if role == "tool" and isinstance(call_id, str) and call_id:
        out["tool_call_id"] = call_id
    return out


def _content(value: Any, ctx: Context, where: str) -> tuple[str | None, list[Any]]:
    """(text, tool calls found in content blocks) of a message's content."""
    if value is None or isinstance(value, str):
        return value, []
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        return json.dumps(value, ensure_ascii=False), []
    texts: list[str] = []
    calls: list[Any] = []
    for block in value:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, Mapping) and block.get("type") in TEXT_BLOCKS and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block, Mapping) and block.get("type") == "tool_use":
            calls.append(block)
        else:
            kind = block.get("type", "object") if isinstance(block, Mapping) else type(block).__name__
            ctx.unmapped[f"message.content.{kind}"] += 1
    return ("\n".join(texts) if texts or not calls else None), calls


def output_messages(value: Any, ctx: Context, where: str) -> list[dict[str, Any]]:
    """The answer from an output in any common shape: a message or text, OpenAI {choices}, LangChain
    {generations} (LLMResult), {output: ...}, or {messages: [whole conversation]} (its trailing assistant turns)."""
    if isinstance(value, Mapping) and "role" not in value and "lc" not in value:
        if isinstance(value.get("choices"), list) and value["choices"]:
            first = value["choices"][0]
            return output_messages(first.get("message", first.get("text")) if isinstance(first, Mapping) else first,
                                   ctx, f"{where}.choices[0]")
        if "generations" in value:
            gens = value["generations"]
            while isinstance(gens, list) and gens and isinstance(gens[0], list):
                gens = gens[0]
            if not isinstance(gens, list) or not gens or not isinstance(gens[0], Mapping):
                raise Malformed(f"{where}.generations: empty")
            return output_messages(gens[0].get("message") or gens[0].get("text"), ctx, f"{where}.generations[0]")
        if isinstance(value.get("messages"), list):
            msgs = messages(value["messages"], ctx, "assistant", f"{where}.messages")
            return final_assistant(msgs)[1] or msgs
        for key in ("output", "answer", "response", "message"):
            if key in value:
                return output_messages(value[key], ctx, f"{where}.{key}")
        if "content" not in value and "type" not in value:
            raise Malformed(f"{where}: no answer found (expected a message, text, choices, generations or output)")
    return messages(value, ctx, "assistant", where)


def arguments_text(args: Any) -> str:
    """Tool-call arguments as the JSON string OpenAI messages carry."""
    if isinstance(args, str):
        return args
    return json.dumps({} if args is None else args, ensure_ascii=False)


def arguments_object(args: Any) -> dict[str, Any] | str:
    """Tool-call arguments for a step: an object; JSON text is parsed, and text that is not a JSON object stays as
    it was (the schema's raw-string case), so nothing the model wrote is lost."""
    if isinstance(args, Mapping):
        return dict(args)
    if args is None:
        return {}
    if isinstance(args, str):
        try:
            parsed = loads(args)
        except ValueError:
            return args
        return parsed if isinstance(parsed, dict) else args
    return json.dumps(args, ensure_ascii=False)


def tool_call(c: Any, ctx: Context, where: str, index: int) -> dict[str, Any]:
    """{id, type: function, function: {name, arguments}} from OpenAI, LangChain, OTel or Anthropic tool calls."""
    if not isinstance(c, Mapping):
        raise Malformed(f"{where}: a tool call must be an object")
    fn = c.get("function") if isinstance(c.get("function"), Mapping) else c
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise Malformed(f"{where}: tool call has no function name")
    args = next((fn[k] for k in ("arguments", "args", "input") if k in fn), None)
    call_id = c.get("id") or c.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        call_id = f"call_{index}"
        ctx.defaults["tool call id (none in the source: call_<index>)"] += 1
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments_text(args)}}


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _from_parts(m: Mapping[str, Any], ctx: Context, where: str) -> list[dict[str, Any]]:
    """An OpenTelemetry GenAI message: text parts join into content; each tool_call_response becomes a tool message."""
    role = _role(m.get("role"), where)
    parts = m.get("parts")
    if not isinstance(parts, list):
        raise Malformed(f"{where}.parts: must be a list")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for i, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            texts.append(_text_of(part.get("content", "")))
        elif kind == "tool_call":
            calls.append(tool_call(part, ctx, f"{where}.parts[{i}]", len(calls)))
        elif kind == "tool_call_response":
            # the JSON schema names the payload `response`; the registry's example says `result`
            payload = part.get("response", part.get("result"))
            result = {"role": "tool", "content": _text_of(payload)}
            if isinstance(part.get("id"), str) and part["id"].strip():
                result["tool_call_id"] = part["id"].strip()
            results.append(result)
        else:
            ctx.unmapped[f"message.parts.{kind or 'untyped'}"] += 1
    ctx.note_unmapped(m, {"role", "parts", "name", "finish_reason"}, "message.")
    out: list[dict[str, Any]] = []
    if texts or calls or not results:
        main: dict[str, Any] = {"role": role, "content": "\n".join(texts) if texts or not calls else None}
        if isinstance(m.get("name"), str) and m["name"]:
            main["name"] = m["name"]
        if calls:
            if role != "assistant":
                raise Malformed(f"{where}: tool_call parts belong to assistant messages, not {role}")
            main["tool_calls"] = calls
        out.append(main)
    return out + results


def tool_definitions(value: Any, ctx: Context, where: str) -> list[dict[str, Any]]:
    """OpenAI tool definitions from OpenAI (nested), flat ({type, name, parameters}) or Anthropic (input_schema)."""
    if value in (None, "", []):
        return []
    if not isinstance(value, list):
        raise Malformed(f"{where}: tool definitions must be a list")
    out = []
    for i, t in enumerate(value):
        if not isinstance(t, Mapping):
            raise Malformed(f"{where}[{i}]: a tool definition must be an object")
        fn = t.get("function") if isinstance(t.get("function"), Mapping) else t
        kind = t.get("type", "function")
        if kind != "function" or not isinstance(fn.get("name"), str):
            ctx.unmapped[f"tool_definitions.{kind}"] += 1  # a provider's built-in tool (web_search ...)
            continue
        spec: dict[str, Any] = {"name": fn["name"]}
        if isinstance(fn.get("description"), str):
            spec["description"] = fn["description"]
        params = fn.get("parameters", fn.get("input_schema"))
        if isinstance(params, Mapping):
            spec["parameters"] = dict(params)
        if isinstance(fn.get("strict"), bool):
            spec["strict"] = fn["strict"]
        out.append({"type": "function", "function": spec})
    return out


def system_text(value: Any, ctx: Context, where: str) -> str | None:
    """System instructions from a string or a list of OTel parts ({type: text, content})."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        raise Malformed(f"{where}: system instructions must be text or a list of parts")
    texts = []
    for part in value:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping) and part.get("type") == "text":
            texts.append(_text_of(part.get("content", "")))
        else:
            ctx.unmapped[f"system_instructions.{part.get('type') if isinstance(part, Mapping) else 'value'}"] += 1
    return "\n".join(texts) or None


def final_assistant(msgs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split a conversation into (prompt, answer): the answer is the trailing run of assistant messages."""
    cut = len(msgs)
    while cut > 0 and msgs[cut - 1]["role"] == "assistant":
        cut -= 1
    return msgs[:cut], msgs[cut:]
