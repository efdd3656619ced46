"""`python -m rlops.regenerate`: rewrite every file derived from a model, so each is declared once.

From the component registry (rlops/components.py): the gate and judge parts of rlops/spec/schemas/cycle.schema.json.
From the settings models (rlops/settings.py): the cycle schema's extract keys, the generated conf files in
pipelines/conf/ (and config.yaml's extract block) and the README's settings tables.
tests/test_components.py and tests/test_settings.py fail when a committed file differs from what this writes.
"""

from __future__ import annotations

from pathlib import Path

from rlops import settings
from rlops.components import SCHEMA_FILE, schema_text
from rlops.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def generated(root: Path = ROOT) -> dict[str, str]:
    """{path relative to `root`: the text it should have}, computed from the files now in `root`."""
    read = lambda rel: (root / rel).read_text(encoding="utf-8")  # noqa: E731
    schema = schema_text("cycle", read(SCHEMA_FILE), settings.schema_parts())
    return {SCHEMA_FILE: schema_text("cycle", schema),
            settings.CONFIG_FILE: settings.config_text(read(settings.CONFIG_FILE)),
            "README.md": settings.readme_text(read("README.md")),
            **settings.conf_files()}


def regenerate(root: Path = ROOT) -> list[str]:
    """Write every derived file that differs; the paths written."""
    written = []
    for rel, text in generated(root).items():
        path = root / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)
            written.append(rel)
    return written


if __name__ == "__main__":
    for rel in regenerate():
        print(f"wrote {rel}")
