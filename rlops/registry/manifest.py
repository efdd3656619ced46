"""`deployments/<policy>.yaml`: which version serves production, and optionally shadow and canary traffic.

Only a pull request made by `rlops propose` or `rlops rollback` changes it; its signed merge is the deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlops.errors import InvalidInput, Problem
from rlops.gitio import parse_yaml_text

DEPLOYMENTS = "deployments"
HEADER = ("# Which version of {policy} serves where. Changed only by the pull requests `rlops propose` and\n"
          "# `rlops rollback` open; a signed merge makes it so and `rlops promote` records it (audit/ledger.jsonl).\n")


def manifest_path(policy: str) -> str:
    return f"{DEPLOYMENTS}/{policy}.yaml"


@dataclass(frozen=True)
class Manifest:
    policy: str
    production: str = "base"
    shadow: str | None = None
    canary: str | None = None
    canary_fraction: float | None = None

    @classmethod
    def parse(cls, text: str | None, policy: str, file: str) -> "Manifest":
        """The manifest in `text`; a repository without one serves the base model in production."""
        if text is None:
            return cls(policy)
        data: Any = parse_yaml_text(text) or {}
        problems = []
        if not isinstance(data, dict):
            raise InvalidInput([Problem(file, None, "", "must be a mapping with policy, production, shadow, canary")])
        unknown = set(data) - {"policy", "production", "shadow", "canary"}
        problems += [Problem(file, None, k, "unknown key; known: policy, production, shadow, canary") for k in sorted(unknown)]
        if data.get("policy") != policy:
            problems.append(Problem(file, None, "policy", f"is {data.get('policy')!r}, expected {policy!r}"))
        if not isinstance(data.get("production"), str):
            problems.append(Problem(file, None, "production", "must name a version: base or vN"))
        canary = data.get("canary")
        if canary is not None and not (isinstance(canary, dict) and set(canary) == {"version", "fraction"}):
            problems.append(Problem(file, None, "canary", "must be null or {version: vN, fraction: 0.05}"))
        if problems:
            raise InvalidInput(problems, hint="restore the manifest from the default branch; only rlops changes it")
        return cls(policy, data["production"], data.get("shadow"), canary["version"] if canary else None,
                   float(canary["fraction"]) if canary else None)

    def text(self) -> str:
        body = {"policy": self.policy, "production": self.production, "shadow": self.shadow,
                "canary": {"version": self.canary, "fraction": self.canary_fraction} if self.canary else None}
        return HEADER.format(policy=self.policy) + yaml.safe_dump(body, sort_keys=False)

    def stages(self) -> dict[str, str]:
        """stage -> version, for the stages in use."""
        out = {"production": self.production}
        if self.shadow:
            out["shadow"] = self.shadow
        if self.canary:
            out["canary"] = self.canary
        return out


def load(root: Path, policy: str) -> Manifest:
    path = root / manifest_path(policy)
    return Manifest.parse(path.read_text(encoding="utf-8") if path.is_file() else None, policy, manifest_path(policy))


def moved(current: Manifest, version: str, promotion: dict[str, Any]) -> Manifest:
    """The manifest after a proposal of `version` with the cycle's `promotion` (replace, shadow or canary)."""
    mode = promotion["mode"]
    if mode == "replace":
        return Manifest(current.policy, version, current.shadow, current.canary, current.canary_fraction)
    if mode == "shadow":
        return Manifest(current.policy, current.production, version, current.canary, current.canary_fraction)
    return Manifest(current.policy, current.production, current.shadow, version, float(promotion["fraction"]))
