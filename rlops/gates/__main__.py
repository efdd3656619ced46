"""`python -m rlops.gates`: regenerate the gate part of rlops/spec/schemas/cycle.schema.json from the registry."""

from pathlib import Path

from rlops.gates import SCHEMA_FILE, schema_text
from rlops.io import atomic_write_text

path = Path(__file__).resolve().parents[2] / SCHEMA_FILE
atomic_write_text(path, schema_text(path.read_text(encoding="utf-8")))
print(f"wrote {SCHEMA_FILE}")
