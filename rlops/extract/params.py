"""The extract stage's settings, read once from params.yaml into a typed, frozen object.

The `extract` section and the feedback window are declared once, in rlops/settings.py (`ExtractSettings`,
`Window`: type, default, range, description); this module reads params.yaml's `data`, `extract` and `policy`
through those models and adds what depends on other sections (the deployed version, the judge registry), reporting
every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from rlops import settings
from rlops.errors import InvalidInput, Problem
from rlops.records import KINDS  # noqa: F401  (feedback kinds, v1: part of this module's API)
from rlops.settings import SIGNALS, Window

PARAMS_FILE = "params.yaml"
IMPLICIT_ACTIONS = tuple(f.alias or k for k, f in settings.ImplicitWeights.model_fields.items())
JUDGE_OWN_KEYS = ("max_pairs", "min_gap")  # extract.judge keys the extractor reads; the rest configure the judge
_VERSION = re.compile(r"^[a-z][a-z0-9-]*@(v[1-9][0-9]*)$")
__all__ = ["SIGNALS", "Window", "ExtractParams", "JudgeSettings", "deployed_version"]


@dataclass(frozen=True)
class JudgeSettings:
    config: Mapping[str, Any] | None  # what build_judge receives (type, rubric, url, ...); None: no live judge
    max_pairs: int  # at most this many candidate pairs are sent to the judge (each asked in both orders)
    min_gap: float  # recorded judge scores (kind judge) pair up when this far apart on the [0, 1]-normalised scale


@dataclass(frozen=True)
class ExtractParams:
    interactions: tuple[str, ...]  # data.interactions: .jsonl/.parquet files or folders, relative to the repository root
    feedback: tuple[str, ...]  # data.feedback: the same, for feedback events
    window: Window | None  # data.window: only feedback given in this window is used; None = all
    signals: tuple[str, ...]  # extract.signals: the rules that run
    rating_min_gap: float  # two rated answers to one prompt pair up when this far apart (never on a tie)
    edit_min_chars: int  # edits changing fewer characters (Levenshtein) are dropped as trivial
    decontaminate: bool  # drop rows whose prompt shares a normalised 13-gram with an eval suite item
    suites_dir: str  # eval suites, <suite>/prompts.jsonl, relative to the root
    edit_sft: bool  # a kept edit also gives an SFT row (prompt + edited answer)
    rating_good_min: float  # a rating at or above this fraction of its scale is a good (label true) example
    rating_bad_max: float  # a rating at or below this fraction of its scale is a bad (label false) example
    max_pairs_per_prompt: int  # cap on pairs from ratings, judge scores and outcomes per prompt (or task)
    implicit_weights: Mapping[str, float]  # weight of each implicit action's rows; 0 turns the action off
    judge: JudgeSettings
    agent_versions: tuple[str, ...] | None  # feedback about answers of these versions only; None = all
    agent_versions_setting: str  # how the versions were chosen: all, deployed (= ...) or a list
    max_per_user: int | None  # at most this many feedback events per user; None = no cap
    cap_by: str  # who a "user" is for the cap: the feedback's actor or the interaction's user
    dedup: str  # exact or near duplicates are removed (near includes exact); off keeps them
    pii: str  # redact, drop (the row) or off
    pii_tier: str  # regex, or presidio on top of it
    format: str  # jsonl or parquet
    memory_limit: str  # DuckDB's memory limit, e.g. 512MB
    threads: int | None  # DuckDB threads; None = all cores
    policy_name: str  # policy.name
    system_prompt: str  # policy.system_prompt: the prompt's system message when an interaction has none

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> ExtractParams:
        """Read the `data`, `extract`, `policy` (and `cycle.parent_version`) sections; raise InvalidInput listing every problem."""
        problems: list[Problem] = []

        def bad(field: str, message: str) -> None:
            problems.append(Problem(PARAMS_FILE, None, field, message))

        absent: set[str] = set()  # sections reported missing: their keys are not reported again

        def section(name: str) -> Mapping[str, Any]:
            value = params.get(name) if isinstance(params, Mapping) else None
            if not isinstance(value, Mapping):
                bad(name, "missing section" if value is None else f"must be a mapping, not {type(value).__name__}")
                absent.add(name)
                return {}
            return value

        data, extract, policy = section("data"), section("extract"), section("policy")

        def need(sec: Mapping[str, Any], sec_name: str, key: str) -> Any:
            if key not in sec:
                if sec_name not in absent:
                    bad(f"{sec_name}.{key}", "missing")
                return None
            return sec[key]

        def rel_path(sec_name: str, key: str, value: Any) -> str:
            if not isinstance(value, str) or not value.strip():
                bad(f"{sec_name}.{key}", f"must be a path relative to the repository root, not {value!r}")
                return ""
            path = PurePosixPath(value)
            if path.is_absolute() or ".." in path.parts:
                bad(f"{sec_name}.{key}", f"{value!r} points outside the repository; use a path relative to its root")
                return ""
            return path.as_posix()

        def rel_paths(sec: Mapping[str, Any], sec_name: str, key: str) -> tuple[str, ...]:
            """One path, or a non-empty list of them (each a file or a folder)."""
            value = need(sec, sec_name, key)
            if value is None:
                return ()
            if isinstance(value, list):
                if not value:
                    bad(f"{sec_name}.{key}", "must name at least one file or folder")
                return tuple(rel_path(sec_name, f"{key}[{i}]", v) for i, v in enumerate(value))
            return (rel_path(sec_name, key, value),)

        interactions = rel_paths(data, "data", "interactions")
        feedback = rel_paths(data, "data", "feedback")
        window = None  # absent and null both mean: no window
        if data.get("window") is not None:
            window, found = settings.check(Window, data["window"], PARAMS_FILE, "data.window")
            problems.extend(found)

        typed, found = settings.check(settings.ExtractSettings, extract, PARAMS_FILE, "extract")
        problems.extend(found if "extract" not in absent else [])
        suites_dir = rel_path("extract", "suites_dir", extract["suites_dir"]) if "suites_dir" in extract else None
        # what depends on the registry or other sections, checked even when other settings are wrong (all at once)
        default = settings.ExtractSettings.model_fields
        judge = None if any(p.field == "extract.judge" for p in found) else \
            _judge(extract.get("judge", default["judge"].default), bad)
        versions, versions_setting = None, "all"
        if not any(p.field == "extract.agent_versions" for p in found):
            versions, versions_setting = _versions(extract.get("agent_versions", default["agent_versions"].default),
                                                   params, bad)

        name = need(policy, "policy", "name")
        if name is not None and (not isinstance(name, str) or not name):
            bad("policy.name", f"must be a non-empty string, not {name!r}")
        system_prompt = need(policy, "policy", "system_prompt")
        if system_prompt is not None and (not isinstance(system_prompt, str) or not system_prompt.strip()):
            bad("policy.system_prompt", f"must be a non-empty string, not {system_prompt!r}")

        if problems or typed is None or judge is None:
            raise InvalidInput(problems, hint="fix the cycle spec or pipelines/conf, then run `rlops plan`")
        return cls(
            interactions=interactions, feedback=feedback, window=window,  # type: ignore[arg-type]
            signals=tuple(s for s in SIGNALS if s in typed.signals),
            rating_min_gap=float(typed.rating_min_gap), edit_min_chars=typed.edit_min_chars,
            decontaminate=typed.decontaminate, suites_dir=str(suites_dir or typed.suites_dir),
            edit_sft=typed.edit_sft, rating_good_min=float(typed.rating_good_min),
            rating_bad_max=float(typed.rating_bad_max), max_pairs_per_prompt=typed.max_pairs_per_prompt,
            implicit_weights=typed.implicit_weights.model_dump(by_alias=True), judge=judge,
            agent_versions=versions, agent_versions_setting=versions_setting, max_per_user=typed.max_per_user,
            cap_by=typed.cap_by, dedup=typed.dedup, pii=typed.pii, pii_tier=typed.pii_tier, format=typed.format,
            memory_limit=typed.memory_limit, threads=typed.threads,
            policy_name=str(name), system_prompt=str(system_prompt),
        )


def _judge(raw: Any, bad: Callable[[str, str], None]) -> JudgeSettings | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        bad("extract.judge", f"must be a mapping such as {{type: none, max_pairs: 100, min_gap: 0.25}}, not {raw!r}")
        return None
    max_pairs, min_gap = raw.get("max_pairs"), raw.get("min_gap")
    ok = True
    if isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 0:
        bad("extract.judge.max_pairs", f"must be a whole number >= 0, not {max_pairs!r}")
        ok = False
    if isinstance(min_gap, bool) or not isinstance(min_gap, (int, float)) or not 0 <= min_gap <= 1:
        bad("extract.judge.min_gap", f"must be a number between 0 and 1, not {min_gap!r}")
        ok = False
    from rlops import components  # the judge types are components; build_judge checks each type's own keys

    types = ["none", *components.names("judge")]
    if "type" not in raw:
        bad("extract.judge.type", f"missing; use none (recorded judge scores only) or {', '.join(types[1:])}")
        ok = False
    elif raw["type"] not in types:
        bad("extract.judge.type", f"{raw['type']!r} is not a judge type; use one of {', '.join(types)}")
        ok = False
    config = {k: v for k, v in raw.items() if k not in JUDGE_OWN_KEYS}
    if not ok:
        return None
    return JudgeSettings(None if config.get("type") == "none" else config, int(max_pairs), float(min_gap))


def deployed_version(parent: Any) -> str | None:
    """The agent version that answers in production for a cycle's parent: base -> base, name@v3 -> v3."""
    if parent == "base":
        return "base"
    match = _VERSION.match(parent) if isinstance(parent, str) else None
    return match.group(1) if match else None


def _versions(raw: Any, params: Mapping[str, Any], bad: Callable[[str, str], None]) -> tuple[tuple[str, ...] | None, str]:
    if raw is None or raw == "all":
        return None, "all"
    if raw == "deployed":
        cycle = params.get("cycle") if isinstance(params, Mapping) else None
        # `rlops plan` resolves `parent: production` through the manifest into parent_version
        parent = cycle.get("parent_version", cycle.get("parent")) if isinstance(cycle, Mapping) else None
        version = deployed_version(parent)
        if version is None:
            bad("extract.agent_versions", f"deployed: cannot tell which agent version the parent {parent!r} is; "
                "list the versions instead, e.g. [base, v3]")
            return None, "deployed"
        return (version,), f"deployed ({version})"
    if isinstance(raw, (list, tuple)) and raw and all(isinstance(v, str) and v for v in raw):
        return tuple(sorted(set(raw))), ", ".join(sorted(set(raw)))
    bad("extract.agent_versions", f"must be all, deployed or a non-empty list of versions such as [base, v3], not {raw!r}")
    return None, "all"
