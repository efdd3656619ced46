"""JSON Schemas of specs and log records, and readable messages for what fails them.

The schemas live in rlops/spec/schemas/<name>.schema.json (JSON Schema 2020-12) and are the truth for every
format; editors read them too (see the `yaml-language-server` line at the top of each spec).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
import sys
from typing import Any, Callable

from jsonschema import Draft202012Validator, ValidationError

from rlops import records
from rlops.errors import Problem
from rlops.spec.yamlload import field_path

_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")


def _resource(name: str):
    if not _NAME.match(name):
        raise ValueError(f"not a schema name: {name!r}")
    return importlib.resources.files("rlops.spec") / "schemas" / f"{name}.schema.json"


def has_schema(name: str) -> bool:
    """Whether rlops/spec/schemas/<name>.schema.json exists (not cached: schemas are added as rlops grows)."""
    return _resource(name).is_file()


@functools.cache
def load_schema(name: str) -> dict:
    """The parsed schema rlops/spec/schemas/<name>.schema.json; FileNotFoundError when there is none."""
    resource = _resource(name)
    if not resource.is_file():
        raise FileNotFoundError(f"no schema named {name!r} (expected rlops/spec/schemas/{name}.schema.json)")
    return json.loads(resource.read_text(encoding="utf-8"))


def _validator(name: str) -> Draft202012Validator:
    # the plug-in parts (gate rules, judge types) come from the component registry; while it is not even imported,
    # nothing beyond the built-ins is registered, and the committed schema holds their parts (a test checks it)
    components = sys.modules.get("rlops.components")
    registry = components.fingerprints() if components and name in components.DERIVED_SCHEMAS else ()
    return _cached_validator(name, registry)


@functools.cache
def _cached_validator(name: str, registry: tuple) -> Draft202012Validator:
    schema = load_schema(name)
    if registry:
        from rlops import components

        schema = components.with_components(name, schema)
    Draft202012Validator.check_schema(schema)  # a broken schema is a bug in rlops: fail loudly, at first use
    return Draft202012Validator(schema, format_checker=records.format_checker())  # date-time: records' rule


def check(instance: Any, name: str, file: str, line_of: Callable[[tuple], int | None]) -> list[Problem]:
    """Every way `instance` fails schema `name`, each as a Problem with its field path and line."""
    problems: set[Problem] = set()
    for error in _validator(name).iter_errors(instance):
        for path, message in _explain(error):
            problems.add(Problem(file, line_of(path), field_path(path), message))
    return sorted(problems, key=lambda p: (p.line or 0, p.field, p.message))


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is None or isinstance(value, bool) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_type(value: Any) -> str:
    for python, json_name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                              (list, "array"), (dict, "object"), (type(None), "null")):
        if isinstance(value, python):
            return json_name
    return type(value).__name__


def _resolve(schema: Any) -> dict:
    """A sub-schema as written (jsonschema hands `$ref` targets over already resolved)."""
    return schema if isinstance(schema, dict) else {}


def _explain(error: ValidationError) -> list[tuple[tuple, str]]:
    """(field path, message) pairs for one validation error; the default message when ours would be no better."""
    path = tuple(error.absolute_path)
    kind, expected, value, schema = error.validator, error.validator_value, error.instance, error.schema
    if "propertyNames" in error.relative_schema_path:  # the instance is the offending key itself
        why = error.schema.get("description") or f"must match {schema.get('pattern')}"
        return [(path + (value,), f"key {value!r} is not allowed here: {why}")]
    if kind == "additionalProperties" and expected is False and isinstance(value, dict):
        allowed = sorted(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        extra = [k for k in value if k not in allowed and not any(re.search(p, k) for p in patterns)]
        listing = ", ".join(allowed) if allowed else "none"
        return [(path + (k,), f"unknown key {k!r}; allowed keys: {listing}") for k in extra]
    if kind == "required" and isinstance(value, dict):
        why = f" ({schema['description']})" if "then" in error.relative_schema_path and "description" in schema else ""
        return [(path + (k,), f"missing required key {k!r}{why}") for k in expected if k not in value]
    if kind == "anyOf":  # a value of one of several forms: explain it by the form its type matches
        fitting = [e for e in error.context if not (e.validator == "type" and tuple(e.absolute_path) == path)]
        if fitting:
            return [found for e in fitting for found in _explain(e)]
        forms = " or ".join(_resolve(e.schema).get("title", "?").lower() for e in error.context if e.validator == "type")
        return [(path, f"expected {forms or 'another form'}, got {_json_type(value)} {_show(value)}")]
    if kind in ("format", "pattern") and schema.get("format") == "date-time":  # one message for either
        return [(path, records.timestamp_problem(value) or error.message)]
    if kind == "enum":
        return [(path, f"{_show(value)} is not allowed; use one of: {', '.join(map(str, expected))}")]
    if kind == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        return [(path, f"expected {wanted}, got {_json_type(value)} {_show(value)}")]
    if kind == "pattern":
        why = f" ({schema['description']})" if "description" in schema else ""
        return [(path, f"{_show(value)} does not match {expected}{why}")]
    if kind in ("minLength", "minItems"):
        unit = "characters" if kind == "minLength" else "items"
        if expected == 1:
            return [(path, "must not be empty")]
        return [(path, f"{_show(value)} is too short: at least {expected} {unit}")]
    if kind == "format" and expected == "date":
        return [(path, f"{_show(value)} is not a date; write YYYY-MM-DD, e.g. 2026-11-01")]
    return [(path, error.message)]
