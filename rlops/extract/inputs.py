"""The `inputs@<stream>-<n>` stages: one per log path of the cycle, each a DVC dependency of its own.

DVC cannot template a list into a stage's `deps` (`Cannot interpolate data of type 'list'`), so the extract stage
cannot list a variable number of log paths itself. dvc.yaml iterates over params.yaml's `data.sources` instead:
stage `inputs@interactions-2` depends on the second interactions path and writes a small manifest of its files
(path, bytes, SHA-256), and the extract stage depends on the folder of manifests. A changed log changes its
manifest, so `dvc repro` re-runs the extract stage; an unchanged one leaves it alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rlops import layout
from rlops.errors import InvalidInput, Problem
from rlops.extract import engine


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record(params: dict[str, Any], root: Path, key: str) -> Path:
    """Write artifacts/inputs/<key>.json for the log path params.yaml's data.sources[key] names."""
    from rlops.io import atomic_write_json

    sources = (params.get("data") or {}).get("sources") or {}
    if key not in sources:
        raise InvalidInput([Problem("params.yaml", None, f"data.sources.{key}",
                                    f"missing; known: {', '.join(sources) or 'none'}")],
                           hint="run `rlops plan SPEC`, which writes data.sources from the spec's feedback paths")
    source = engine.resolve(root, sources[key], f"data.sources.{key}")
    manifest = {"path": sources[key],
                "files": [{"file": display, "bytes": path.stat().st_size, "sha256": _sha256(path)}
                          for path, display in zip(source.files, source.displays)]}
    out = Path(root) / layout.input_manifest(key)
    atomic_write_json(out, manifest)
    print(f"inputs: {key}: {sources[key]} ({len(manifest['files'])} file(s)) -> {out.relative_to(root)}", flush=True)
    return out
