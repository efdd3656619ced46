"""Importers: other tools' logs and public preference datasets -> rlops v1 interactions and feedback.

Each format is one module with `convert(ctx, source)`, which yields ("interaction" | "feedback", record, where)
and reports what it could not map through `ctx`; its docstring holds the field mapping table. The module registers
it as an `importer` component (`rlops/components.py`, whose `BUILTIN` table says which module holds which format);
`rlops.observe.importers.driver.import_logs` drives one import. Listing the names imports no format module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlops.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from rlops.components import Component

SOURCE = "an export file, or a folder of .json/.jsonl files"  # what every format reads
WRITES = "rlops v1 interactions and feedback; quarantine rows for what cannot be mapped"


def names() -> list[str]:
    """The format names, as `rlops import` takes them; imports no format module."""
    from rlops import components

    return components.names("importer")


def load(name: str) -> Component:
    """The importer of format `name` (a registry component whose function is `convert(ctx, source)`);
    InvalidInput listing the formats when there is none."""
    from rlops import components

    if not isinstance(name, str) or name not in components.names("importer"):
        raise InvalidInput([Problem("", None, "FORMAT", f"unknown format {name!r}; formats: {', '.join(names())}")],
                           hint="rlops import --help lists the formats and what each reads")
    return components.get("importer", name)
