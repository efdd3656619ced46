"""Registered versions: `registry/<policy>/<vN>/version.yaml` (the record) and `model.dvc` (the weights, in DVC).

A version records its cycle, its parent version, the spec (path and git blob), the dataset and model digests (as
`dvc.lock` has them), the evaluation summary and the SHA-256 of every evidence file. `model.dvc` holds the same
directory digest as the train stage's output in `dvc.lock`, so the weights already in the DVC cache are the
registered ones: `dvc pull registry/<policy>/<vN>/model.dvc` (or `dvc checkout`) brings them back.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from rlops.errors import InvalidInput, Problem

REGISTRY = "registry"
VERSION_RE = re.compile(r"^v([1-9][0-9]*)$")


def version_dir(policy: str, version: str) -> str:
    return f"{REGISTRY}/{policy}/{version}"


def version_file(policy: str, version: str) -> str:
    return f"{version_dir(policy, version)}/version.yaml"


def model_dvc(policy: str, version: str) -> str:
    return f"{version_dir(policy, version)}/model.dvc"


def number(version: str) -> int:
    m = VERSION_RE.match(version)
    return int(m.group(1)) if m else 0


def registered(root: Path, policy: str) -> list[str]:
    """The versions registered in the working tree, oldest first."""
    folder = root / REGISTRY / policy
    found = [p.name for p in folder.iterdir() if (p / "version.yaml").is_file()] if folder.is_dir() else []
    return sorted((v for v in found if VERSION_RE.match(v)), key=number)


def next_version(root: Path, policy: str) -> str:
    versions = registered(root, policy)
    return f"v{number(versions[-1]) + 1}" if versions else "v1"


def taken_elsewhere(root: Path, policy: str, version: str) -> str | None:
    """Where `policy@version` is registered already though this checkout lacks it: its GTO tag, or None."""
    from rlops.gitio import git
    from rlops.registry.tags import semver

    tag = f"{policy}@{semver(version)}"
    return f"tag {tag}" if git(root, "tag", "--list", tag, check=False).strip() else None


def load(root: Path, policy: str, version: str) -> dict[str, Any]:
    path = root / version_file(policy, version)
    if not path.is_file():
        raise InvalidInput([Problem(version_file(policy, version), None, "", f"{policy}@{version} is not registered")],
                           hint=f"registered versions: {', '.join(registered(root, policy)) or 'none'}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dvc_file_text(out: dict[str, Any]) -> str:
    """A .dvc file for `model/` carrying the directory digest dvc.lock recorded for the trained checkpoint."""
    entry = {"md5": out["md5"], "size": out.get("size"), "nfiles": out.get("nfiles"), "hash": "md5", "path": "model"}
    return yaml.safe_dump({"outs": [{k: v for k, v in entry.items() if v is not None}]}, sort_keys=False)


def resolve_parent(root: Path, policy: str, parent: str, spec_file: str, line: int | None) -> tuple[str, dict[str, Any] | None]:
    """A cycle's `parent` (base, production, or policy@vN) -> (version, model params or None for the base model)."""
    from rlops.registry import manifest

    version = parent
    if parent == "production":
        version = manifest.load(root, policy).production
    elif "@" in parent:
        version = parent.split("@", 1)[1]
    if version == "base":
        return "base", None
    path = root / version_file(policy, version)
    if not path.is_file():
        raise InvalidInput([Problem(spec_file, line, "parent", f"'{parent}' resolves to {policy}@{version}, which is not "
                                                               f"registered ({version_file(policy, version)} is missing)")],
                           hint=f"registered versions: {', '.join(registered(root, policy)) or 'none'}")
    entry = yaml.safe_load(path.read_text(encoding="utf-8"))
    model_path = f"{version_dir(policy, version)}/model"
    return version, {
        "name": f"{policy}@{version}",
        "source": "local",
        "path": model_path,
        "digest": entry["model"]["md5"],  # a new parent changes params.yaml, so DVC re-runs base
        "tokenizer": {"source": "local", "path": model_path},
    }
