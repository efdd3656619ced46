"""The component registry: gate rules, evaluation metrics and judges, each chosen by name from a spec.

A component is registered by name with a typed settings model (pydantic), a one-line description, what it reads
and what it writes, and its function. The built-in ones live one module per component (or per small family) and
register themselves when their module is imported; `BUILTIN` below is the one line per name that says where, so
that listing the names costs no import. Code elsewhere (a plug-in, a test) calls `register` with its own component.

| kind        | where the built-ins live    | function                                                  |
|-------------|-----------------------------|-----------------------------------------------------------|
| `gate_rule` | `rlops/gates/<rule>.py`     | `(settings, evidence: gates.Evidence) -> gates.Outcome`    |
| `metric`    | `rlops/evaluate/metrics.py` | `(doc, answer text) -> float`; `Metric` adds its direction |
| `judge`     | `rlops/extract/judges.py`   | `(settings, root) -> Judge`                               |
| `importer`  | `rlops/observe/importers/<format>.py` | `(ctx, source) -> (stream, record, where)...`   |
| `serve_backend` | `rlops/serve/backends.py` | `(ServeSettings, root) -> backend` (`complete`, `stream`, `close`) |
| `method`    | `rlops/train/<method>.py`   | `(ctx: train.common.TrainContext) -> metrics dict`; `Method` adds the sets it reads and its TRL config |
| `reward`    | `rlops/train/rewards.py`    | `(settings, ctx) -> fn(prompts, completions, **columns) -> list[float]` (grpo, rloo) |

Pydantic (not dataclasses) because one model gives what each plug-in point needs: validation that reports every
field at once with its path, typed defaults, and the JSON Schema fragment the spec schema is built from.
Import-light: pydantic and the standard library only; a component's module is imported on first lookup.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from rlops.errors import InvalidInput, Problem

KINDS = {"gate_rule": "gate rule", "metric": "metric", "judge": "judge type", "importer": "import format",
         "serve_backend": "serving backend", "method": "train method", "reward": "reward function"}

# kind -> name -> the module that registers it on import; the order is the order names are listed
BUILTIN: dict[str, dict[str, str]] = {
    "gate_rule": {
        "non_inferior": "rlops.gates.non_inferior",
        "superior": "rlops.gates.superior",
        "no_item_regression": "rlops.gates.no_item_regression",
        "at_least": "rlops.gates.at_least",
        "win_rate": "rlops.gates.win_rate",
    },
    "metric": {
        "rubric": "rlops.evaluate.metrics",
        "safe": "rlops.evaluate.metrics",
        "refused": "rlops.evaluate.metrics",
        "refusal": "rlops.evaluate.metrics",
        "length": "rlops.evaluate.metrics",
    },
    "judge": {
        "rubric": "rlops.extract.judges",
        "transformers": "rlops.extract.judges",
        "http": "rlops.extract.judges",
    },
    "importer": {
        "otel": "rlops.observe.importers.otel",
        "openai": "rlops.observe.importers.openai",
        "langfuse": "rlops.observe.importers.langfuse",
        "langsmith": "rlops.observe.importers.langsmith",
        "hh-rlhf": "rlops.observe.importers.hh_rlhf",
        "ultrafeedback": "rlops.observe.importers.ultrafeedback",
        "openai-dpo": "rlops.observe.importers.openai_dpo",
        "trl-preference": "rlops.observe.importers.trl_preference",
        "trl-unpaired": "rlops.observe.importers.trl_unpaired",
    },
    "serve_backend": {
        "upstream": "rlops.serve.backends",
        "transformers": "rlops.serve.backends",
        "vllm": "rlops.serve.backends",
    },
    "method": {  # each module also has its conf file, pipelines/conf/method/<name>.yaml (generated)
        "sft": "rlops.train.sft",
        "dpo": "rlops.train.dpo",
        "kto": "rlops.train.kto",
        "reward": "rlops.train.reward",
        "grpo": "rlops.train.grpo",
        "rloo": "rlops.train.rloo",
        "online_dpo": "rlops.train.online_dpo",
    },
    "reward": {  # the reward functions of grpo and rloo (train.rewards)
        "reward_model": "rlops.train.rewards",
        "judge": "rlops.train.rewards",
        "rubric": "rlops.train.rewards",
    },
}


class Settings(BaseModel):
    """Base of every component's settings: strict types (no "1" for 1, no true for 1) and no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class NoSettings(Settings):
    """A component without settings."""


@dataclass(frozen=True)
class Component:
    kind: str  # one of KINDS
    name: str  # what a spec writes, e.g. rule: non_inferior
    description: str  # one line, shown in the schema, the README and error messages
    reads: str  # what the function reads, e.g. "paired per-item scores of one metric"
    writes: str  # what it produces, e.g. "pass/fail and the reason"
    function: Callable[..., Any]
    settings: type[Settings] = NoSettings


@dataclass(frozen=True)
class Metric(Component):
    """An evaluation metric: its direction and range are facts the gate reads."""

    higher_is_better: bool = True
    range: tuple[float | None, float | None] = (None, None)  # (low, high); None: unbounded on that side


@dataclass(frozen=True)
class Importer(Component):
    """An import format (`rlops import FORMAT`): its function is `convert(ctx, source)`."""

    read_unit: str = "records"  # what one unit of its input is called in the import report


@dataclass(frozen=True)
class Method(Component):
    """A train method: the extracted sets it reads and the TRL config class its settings pass into.

    `trl_config` is "module:Class" (e.g. "trl:DPOConfig"), so plan can check keys without importing trl."""

    sets: tuple[str, ...] = ()  # training sets it reads: pairs, unpaired, sft, rewards, prompts
    trl_config: str = ""
    policy: bool = True  # its merged/ is a policy; False (a reward model): the next recipe step starts where it did


_REGISTERED: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}


def register(component: Component) -> Component:
    """Make `component` available by its name; registering another one under a taken name is an error."""
    if component.kind not in KINDS:
        raise ValueError(f"unknown component kind {component.kind!r}; kinds: {', '.join(KINDS)}")
    taken = _REGISTERED[component.kind].get(component.name)
    if taken is not None and taken != component:
        raise ValueError(f"a {KINDS[component.kind]} named {component.name!r} is already registered")
    _REGISTERED[component.kind][component.name] = component
    return component


def names(kind: str) -> list[str]:
    """Every name of `kind`, built-in first (in table order), then registered ones; imports nothing."""
    return [*BUILTIN.get(kind, {}), *(n for n in _REGISTERED[kind] if n not in BUILTIN.get(kind, {}))]


def get(kind: str, name: str) -> Component:
    """The component `name` of `kind`; InvalidInput listing the known names when there is none."""
    found = _REGISTERED[kind].get(name) if isinstance(name, str) else None
    if found is None and isinstance(name, str) and name in BUILTIN.get(kind, {}):
        importlib.import_module(BUILTIN[kind][name])
        found = _REGISTERED[kind].get(name)
    if found is None:
        raise InvalidInput([Problem("", None, kind, f"unknown {KINDS[kind]} {name!r}; known: {', '.join(names(kind))}")],
                           hint="docs/architecture.md says where a new one goes")
    return found


def all_of(kind: str) -> list[Component]:
    """Every component of `kind`, loaded, in `names` order."""
    return [get(kind, n) for n in names(kind)]


def fingerprint(kind: str) -> tuple[tuple[str, int], ...]:
    """Changes whenever the set of registered components of `kind` does (a cache key for derived schemas)."""
    return tuple((n, id(c)) for n, c in sorted(_REGISTERED[kind].items())) + tuple(BUILTIN.get(kind, {}))


def defaults(settings: type[Settings], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings that have a default, in declaration order, as plain values."""
    return {k: f.default for k, f in settings.model_fields.items() if not f.is_required() and k not in skip}


def validate(component: Component, values: Mapping[str, Any], file: str, prefix: str,
             context: Mapping[str, Any] | None = None) -> tuple[Settings | None, list[Problem]]:
    """`values` as the component's typed settings, or every problem, each named `prefix.field`; `context` reaches
    the model's validators (e.g. the repository root, for a path that must exist)."""
    try:
        return component.settings.model_validate(dict(values), context=dict(context or {})), []
    except ValidationError as e:
        return None, [Problem(file, None, ".".join(p for p in (prefix, *map(str, err["loc"])) if p),
                              explain(component, err)) for err in e.errors()]


def explain(component: Component, err: Mapping[str, Any]) -> str:
    """One pydantic error in rlops' words: what is wrong, and what would be right."""
    what = f"a {component.name} {KINDS[component.kind]}"
    if err["type"] == "missing":
        return f"missing; {what} needs it"
    if err["type"] == "extra_forbidden":
        return f"unknown key for {what}; its keys are {', '.join(component.settings.model_fields)}"
    from rlops import settings  # it builds on this module

    return settings.explain(err)


def _property(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic field schema as a spec schema writes it: an optional field is its value's type (a spec never
    writes null for it) and a None default is not shown."""
    schema = dict(schema)
    options = schema.pop("anyOf", None)
    if options:
        schema = {**next(o for o in options if o.get("type") != "null"), **schema}
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


def variant_schema(kind: str, selector: str, shared: Mapping[str, dict[str, Any]] | None = None,
                   also: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(properties, allOf branches) of a mapping that picks a component of `kind` by its `selector` key: every
    component's keys from its settings model (plus `shared` keys every variant takes), the selector's enum with one
    description per name, and one if/then branch per component that names its keys and what it needs. `also`
    adds names that are not components (e.g. a judge type `none`), each with its description."""
    shared = dict(shared or {})
    properties: dict[str, Any] = {}
    branches = []
    described = [*(also or {}).items()]
    for c in all_of(kind):
        described.append((c.name, c.description))
        model = c.settings.model_json_schema()
        for key, sub in model["properties"].items():
            sub = _property(sub)
            if key not in properties:
                properties[key] = sub
            else:  # a key two components share: both descriptions, and no default unless they agree
                if sub.get("description") and sub["description"] not in properties[key].get("description", ""):
                    properties[key] = {**properties[key],
                                       "description": f"{properties[key].get('description', '')} {sub['description']}"}
                if properties[key].get("default") != sub.get("default"):
                    properties[key] = {k: v for k, v in properties[key].items() if k != "default"}
        keys = [*c.settings.model_fields, *shared]
        required = [k for k in model.get("required", []) if k != selector and k in c.settings.model_fields]
        then: dict[str, Any] = {
            "description": f"a {c.name} {KINDS[kind]} takes {', '.join(keys)}"
                           + (f" and needs {', '.join(required)}" if required else ""),
            "propertyNames": {"description": f"a {c.name} {KINDS[kind]}'s keys are {', '.join(keys)}", "enum": keys}}
        if required:
            then["required"] = required
        branches.append({"if": {"properties": {selector: {"const": c.name}}, "required": [selector]}, "then": then})
    for name in also or {}:
        keys = [selector, *shared]
        branches.append({"if": {"properties": {selector: {"const": name}}, "required": [selector]},
                         "then": {"description": f"{selector} {name} takes {', '.join(keys)}",
                                  "propertyNames": {"description": f"with {selector} {name}, the keys are "
                                                                   f"{', '.join(keys)}", "enum": keys}}})
    properties.update(shared)
    properties[selector] = {**properties.get(selector, {}), "title": properties.get(selector, {}).get("title", selector),
                            "description": "; ".join(f"{n}: {d}" for n, d in described),
                            "enum": [n for n, _ in described]}
    properties[selector].pop("type", None)
    return properties, branches


SCHEMA_FILE = "rlops/spec/schemas/cycle.schema.json"
DERIVED_SCHEMAS = ("cycle",)  # the spec schemas with parts derived from the registry


def derived_parts(name: str) -> dict[tuple[str, ...], dict[str, Any]]:
    """The parts of spec schema `name` that the registry derives: {path in the schema: sub-schema}."""
    if name not in DERIVED_SCHEMAS:
        return {}
    from rlops.extract.judges import judge_schema
    from rlops.gates import gate_schema

    return {("$defs", "gate"): gate_schema(), ("properties", "extract", "properties", "judge"): judge_schema(),
            ("properties", "train", "properties", "method"): method_schema()}


def method_schema() -> dict[str, Any]:
    """The cycle schema's `train.method`: one name per registered train method, each described."""
    methods = all_of("method")
    return {"title": "Method",
            "description": "The training method, chosen by name from rlops's registry (a config in "
                           "pipelines/conf/method/): " + "; ".join(f"{c.name}: {c.description}" for c in methods),
            "enum": [c.name for c in methods]}


def with_components(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its derived parts replaced by what the registry says now (a component registered at run time
    validates like a built-in one)."""
    import copy

    schema = copy.deepcopy(schema)
    for path, part in derived_parts(name).items():
        node = schema
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = part
    return schema


def schema_text(name: str, text: str, parts: Mapping[tuple[str, ...], dict[str, Any]] | None = None) -> str:
    """The schema's text with each derived part (the registry's, or `parts`) rewritten; the rest is kept byte for
    byte, so the file stays readable and other edits to it merge."""
    import json

    for path, part in (derived_parts(name) if parts is None else parts).items():
        start = 0
        for key in path:  # each key's first occurrence after its parent's (the schema's keys are written in order)
            start = text.index(f'"{key}": ', start)
        value_at = text.index("{", start)
        _, length = json.JSONDecoder().raw_decode(text[value_at:])
        indent = start - text.rindex("\n", 0, start) - 1
        block = json.dumps(part, indent=2, ensure_ascii=False).replace("\n", "\n" + " " * indent)
        text = text[:value_at] + block + text[value_at + length:]
    return text


def fingerprints() -> tuple:
    """A cache key for schemas derived from the registry."""
    return tuple(fingerprint(kind) for kind in KINDS)
