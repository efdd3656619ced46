"""`python -m rlops.regenerate`: rewrite what is derived from the component registry: the gate and judge parts of
rlops/spec/schemas/cycle.schema.json (tests/test_components.py fails when the committed file differs)."""

from pathlib import Path

from rlops.components import SCHEMA_FILE, schema_text
from rlops.io import atomic_write_text

if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / SCHEMA_FILE
    atomic_write_text(path, schema_text("cycle", path.read_text(encoding="utf-8")))
    print(f"wrote {SCHEMA_FILE}")
