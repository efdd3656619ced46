"""The record schemas (rlops/spec/schemas/*.schema.json) as Python validators, for tests and small checks.

Extraction itself checks records in SQL (rlops.extract.load) against the schemas' essentials; this module
validates one record against the full schema and lists every violation as 'field.path: message'.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from rlops import records

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "spec" / "schemas"


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """The compiled validator of `rlops/spec/schemas/<name>.schema.json` (built once per process)."""
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=records.format_checker())


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
        elif error.validator in ("format", "pattern") and error.schema.get("format") == "date-time":
            reasons.add(f"{where}: {records.timestamp_problem(error.instance)}")
        else:
            reasons.add(f"{where}: {error.message}" if where else error.message)
    return sorted(reasons)
