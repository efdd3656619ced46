"""Reading one section of params.yaml into a typed, frozen dataclass: the checks every stage shares."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from rlops.errors import Problem

PARAMS = "params.yaml"


def key_problems(cls: type, section: str, m: dict[str, Any], unknown: str | None = None) -> list[Problem]:
    """Keys of dataclass `cls` missing from `m`; with `unknown` (a message), also keys `cls` does not have."""
    names = {f.name for f in fields(cls)}
    problems = [Problem(PARAMS, None, f"{section}.{k}", "missing") for k in sorted(names - set(m))]
    if unknown is not None:
        problems += [Problem(PARAMS, None, f"{section}.{k}", unknown) for k in sorted(set(m) - names)]
    return problems


def positive_int_problems(section: str, m: dict[str, Any], keys: tuple[str, ...]) -> list[Problem]:
    return [Problem(PARAMS, None, f"{section}.{k}", f"{m[k]!r} must be a positive integer")
            for k in keys if k in m and (not isinstance(m[k], int) or m[k] < 1)]


def build(cls: type, m: dict[str, Any]):
    """`cls` from the keys of `m` that it declares (call after key_problems found none missing)."""
    return cls(**{f.name: m[f.name] for f in fields(cls)})
