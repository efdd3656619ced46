"""Observation: recording interactions and feedback, and importing other tools' logs.

Import-light on purpose: `Recorder`, `read_records` and `record_files` load `rlops.observe.recorder` (stdlib +
jsonschema) on first use, so importers and the CLI pay nothing for them. The record format is
docs/records.md; `migrate` is the one place that knows older versions of it.
"""

from __future__ import annotations

import re
from typing import Any

from rlops.errors import InvalidInput, Problem

# the record versions this rlops writes; readers accept every version `migrate` can upgrade from
CURRENT = {"interactions": "rlops.interaction/v1", "feedback": "rlops.feedback/v1"}
_VERSION = re.compile(r"(rlops\.[a-z][a-z0-9_-]*)/v([0-9]+)\Z")
# (record family, version) -> function upgrading a record of that version by one version; empty while v1 is current
_UPGRADES: dict[tuple[str, int], Any] = {}

__all__ = ["CURRENT", "Recorder", "migrate", "read_records", "record_files"]


def migrate(record: dict, stream: str) -> dict:
    """`record` in the current version of its stream ("interactions" or "feedback"); the input is not changed.

    A record without `schema` is taken to be v1. A v1 record comes back as it is while v1 is current; when v2
    is current, the registered v1 -> v2 upgrade runs. A newer or unknown version is refused (upgrade rlops)."""
    if stream not in CURRENT:
        raise ValueError(f"unknown stream {stream!r}; expected one of {sorted(CURRENT)}")
    if not isinstance(record, dict):
        raise InvalidInput([Problem(stream, None, "", f"expected a JSON object, got {type(record).__name__}")])
    family, current = _VERSION.match(CURRENT[stream]).groups()  # type: ignore[union-attr]  # constant above
    declared = record.get("schema", f"{family}/v1")
    match = _VERSION.match(declared) if isinstance(declared, str) else None
    if match is None or match.group(1) != family or int(match.group(2)) > int(current):
        raise InvalidInput([Problem(stream, None, "schema", f"{declared!r} is not a version this rlops reads "
                                    f"({family}/v1 to {CURRENT[stream]})")],
                           hint="records from a newer rlops need a newer rlops; see docs/records.md")
    version = int(match.group(2))
    while version < int(current):
        record = _UPGRADES[(family, version)](record)
        version += 1
    return record


def __getattr__(name: str) -> Any:
    if name in ("Recorder", "read_records", "record_files"):
        from rlops.observe import recorder

        return getattr(recorder, name)
    raise AttributeError(f"module 'rlops.observe' has no attribute {name!r}")
