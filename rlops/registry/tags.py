"""Git tags in GTO's format, so `gto show` and `gto history` read the registry: `support-agent@v2.0.0` registers a
version at its merge commit, `support-agent#prod#N` assigns a stage (N counts every assignment of the artifact).

GTO requires SemVer, so rlops's version `v2` is registered as `v2.0.0`. Tags are annotated, and signed
(`git tag -s`) when a signing key is configured (`user.signingkey`).
"""

from __future__ import annotations

import re
from pathlib import Path

from rlops.gitio import git

STAGE_TAG = {"production": "prod", "shadow": "shadow", "canary": "canary"}


def semver(version: str) -> str:
    return f"{version}.0.0" if re.fullmatch(r"v[0-9]+", version) else version


def list_tags(root: Path, policy: str) -> list[str]:
    return [t for t in git(root, "tag", "--list", f"{policy}[@#]*").splitlines() if t]


def points_at(root: Path, tag: str) -> str:
    return git(root, "rev-parse", f"{tag}^{{commit}}").strip()


def registration_commit(root: Path, policy: str, version: str) -> str | None:
    tag = f"{policy}@{semver(version)}"
    return points_at(root, tag) if tag in list_tags(root, policy) else None


def _signing(root: Path) -> list[str]:
    return ["-s"] if git(root, "config", "user.signingkey", check=False).strip() else ["-a"]


def _make(root: Path, name: str, target: str, message: str) -> str:
    git(root, "tag", *_signing(root), name, target, "-F", "-", input=message.encode())
    return name


def register(root: Path, policy: str, version: str, commit: str, message: str) -> str:
    return _make(root, f"{policy}@{semver(version)}", commit, message)


def assign(root: Path, policy: str, stage: str, commit: str, message: str) -> str:
    counters = [int(m.group(1)) for t in list_tags(root, policy) if (m := re.search(r"#(\d+)$", t))]
    return _make(root, f"{policy}#{STAGE_TAG[stage]}#{max(counters, default=0) + 1}", commit, message)
