"""The extract stage's settings, read once from params.yaml into a typed, frozen object.

Every setting has its default in pipelines/conf/config.yaml (so it shows in params.yaml); this module
only checks and types them, and reports every problem at once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from rlops.errors import InvalidInput, Problem

PARAMS_FILE = "params.yaml"
# the rules, in the order they run and are reported; each turns feedback into training rows
SIGNALS = ("edit", "pairwise", "ranking", "rating", "implicit", "outcome", "judge")
KINDS = ("rating", "pairwise", "ranking", "edit", "implicit", "outcome", "judge", "comment")  # feedback kinds (v1)
IMPLICIT_ACTIONS = ("regenerate", "copy", "abandon")
JUDGE_OWN_KEYS = ("max_pairs", "min_gap")  # extract.judge keys the extractor reads; the rest configure the judge
EXTRACT_KEYS = (
    "signals", "rating_min_gap", "edit_min_chars", "decontaminate", "suites_dir", "edit_sft", "rating_good_min",
    "rating_bad_max", "max_pairs_per_prompt", "implicit_weights", "judge", "agent_versions", "max_per_user",
    "cap_by", "dedup", "pii", "pii_tier", "format", "memory_limit", "threads",
)
CHOICES = {
    "cap_by": ("actor", "user"),
    "dedup": ("exact", "near", "off"),
    "pii": ("redact", "drop", "off"),
    "pii_tier": ("regex", "presidio"),
    "format": ("jsonl", "parquet"),
}
_MEMORY = re.compile(r"^[1-9][0-9]*(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
_VERSION = re.compile(r"^[a-z][a-z0-9-]*@(v[1-9][0-9]*)$")


@dataclass(frozen=True)
class Window:
    """Feedback events count when their date (UTC) is within [start, end], both days inclusive."""

    start: dt.date
    end: dt.date

    def contains(self, when: dt.datetime) -> bool:
        return self.start <= when.astimezone(dt.timezone.utc).date() <= self.end


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
        window = _window(data.get("window"), bad)  # absent and null both mean: no window

        for key in sorted(set(extract) - set(EXTRACT_KEYS)):
            bad(f"extract.{key}", f"unknown setting; known: {', '.join(EXTRACT_KEYS)}")
        get = _Getter(extract, "extract", need, bad)

        signals = _signals(need(extract, "extract", "signals"), bad)
        gap = get.number("rating_min_gap", low=0)
        chars = get.integer("edit_min_chars", low=0)
        decon = get.boolean("decontaminate")
        suites_dir = need(extract, "extract", "suites_dir")
        suites_dir = "" if suites_dir is None else rel_path("extract", "suites_dir", suites_dir)
        edit_sft = get.boolean("edit_sft")
        good = get.number("rating_good_min", low=0, high=1)
        bad_max = get.number("rating_bad_max", low=0, high=1)
        if good is not None and bad_max is not None and not bad_max < good:
            bad("extract.rating_bad_max", f"{bad_max} must be below rating_good_min ({good}): ratings between them are dropped")
        per_prompt = get.integer("max_pairs_per_prompt", low=1)
        weights = _weights(need(extract, "extract", "implicit_weights"), bad)
        judge = _judge(need(extract, "extract", "judge"), bad)
        per_user = get.integer("max_per_user", low=1, optional=True)
        choices = {key: get.choice(key, options) for key, options in CHOICES.items()}
        memory = need(extract, "extract", "memory_limit")
        if memory is not None and not (isinstance(memory, str) and _MEMORY.match(memory)):
            bad("extract.memory_limit", f"must be a size such as 512MB or 2GB, not {memory!r}")
        threads = get.integer("threads", low=1, optional=True)
        versions, versions_setting = _versions(need(extract, "extract", "agent_versions"), params, bad)

        name = need(policy, "policy", "name")
        if name is not None and (not isinstance(name, str) or not name):
            bad("policy.name", f"must be a non-empty string, not {name!r}")
        system_prompt = need(policy, "policy", "system_prompt")
        if system_prompt is not None and (not isinstance(system_prompt, str) or not system_prompt.strip()):
            bad("policy.system_prompt", f"must be a non-empty string, not {system_prompt!r}")

        if problems:
            raise InvalidInput(problems, hint="fix the cycle spec or pipelines/conf, then run `rlops plan`")
        return cls(
            interactions=interactions, feedback=feedback, window=window, signals=signals,
            rating_min_gap=float(gap), edit_min_chars=int(chars), decontaminate=bool(decon), suites_dir=suites_dir,
            edit_sft=bool(edit_sft), rating_good_min=float(good), rating_bad_max=float(bad_max),
            max_pairs_per_prompt=int(per_prompt), implicit_weights=weights, judge=judge,  # type: ignore[arg-type]
            agent_versions=versions, agent_versions_setting=versions_setting, max_per_user=per_user,
            cap_by=choices["cap_by"], dedup=choices["dedup"], pii=choices["pii"], pii_tier=choices["pii_tier"],
            format=choices["format"], memory_limit=str(memory), threads=threads,
            policy_name=str(name), system_prompt=str(system_prompt),
        )


class _Getter:
    """Typed reads of one section's keys; each problem is reported, and None returned for it."""

    def __init__(self, sec: Mapping[str, Any], name: str, need: Callable[..., Any], bad: Callable[[str, str], None]):
        self.sec, self.name, self.need, self.bad = sec, name, need, bad

    def _value(self, key: str, optional: bool) -> tuple[bool, Any]:
        if optional and key in self.sec and self.sec[key] is None:
            return False, None
        value = self.need(self.sec, self.name, key)
        return value is not None, value

    def number(self, key: str, low: float | None = None, high: float | None = None) -> float | None:
        present, value = self._value(key, False)
        if not present:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            self.bad(f"{self.name}.{key}", f"must be a number, not {value!r}")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f">= {low}"
            self.bad(f"{self.name}.{key}", f"must be a number {span}, not {value!r}")
            return None
        return float(value)

    def integer(self, key: str, low: int, optional: bool = False) -> int | None:
        present, value = self._value(key, optional)
        if not present:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self.bad(f"{self.name}.{key}", f"must be a whole number >= {low}{' or null' if optional else ''}, not {value!r}")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        present, value = self._value(key, False)
        if present and not isinstance(value, bool):
            self.bad(f"{self.name}.{key}", f"must be true or false, not {value!r}")
            return None
        return value

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        present, value = self._value(key, False)
        if present and value not in options:
            self.bad(f"{self.name}.{key}", f"must be one of {', '.join(options)}, not {value!r}")
        return str(value)


def _signals(raw: Any, bad: Callable[[str, str], None]) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)) or not raw:
        bad("extract.signals", f"must be a non-empty list drawn from {list(SIGNALS)}, not {raw!r}")
        return ()
    for i, name in enumerate(raw):
        if name not in SIGNALS:
            bad(f"extract.signals[{i}]", f"{name!r} is not one of {list(SIGNALS)}")
        elif name in raw[:i]:
            bad(f"extract.signals[{i}]", f"{name!r} is listed twice")
    return tuple(s for s in SIGNALS if s in raw)


def _weights(raw: Any, bad: Callable[[str, str], None]) -> Mapping[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        bad("extract.implicit_weights", f"must be a mapping {{regenerate: 0.5, copy: 0.5, abandon: 0.25}}, not {raw!r}")
        return {}
    out: dict[str, float] = {}
    for key in sorted(set(raw) - set(IMPLICIT_ACTIONS), key=str):
        bad(f"extract.implicit_weights.{key}", f"unknown action; known: {', '.join(IMPLICIT_ACTIONS)}")
    for action in IMPLICIT_ACTIONS:
        value = raw.get(action)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            bad(f"extract.implicit_weights.{action}", f"must be a number between 0 and 1 (0 = unused), not {value!r}")
        else:
            out[action] = float(value)
    return out


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


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return None  # a time of day makes "inclusive of the whole day" ambiguous
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _window(value: Any, bad: Callable[[str, str], None]) -> Window | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        bad("data.window", f"must be a mapping {{from: YYYY-MM-DD, to: YYYY-MM-DD}} or null, not {value!r}")
        return None
    dates: dict[str, dt.date] = {}
    for key in ("from", "to"):
        if key not in value:
            bad(f"data.window.{key}", "missing")
            continue
        day = _date(value[key])
        if day is None:
            bad(f"data.window.{key}", f"must be a date YYYY-MM-DD, not {value[key]!r}")
        else:
            dates[key] = day
    for key in sorted(set(value) - {"from", "to"}):
        bad(f"data.window.{key}", "unknown setting; known: from, to")
    if len(dates) < 2:
        return None
    if dates["from"] > dates["to"]:
        bad("data.window", f"from ({dates['from']}) is after to ({dates['to']})")
        return None
    return Window(dates["from"], dates["to"])
