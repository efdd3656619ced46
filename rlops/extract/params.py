"""The extract stage's settings, read once from params.yaml into a typed, frozen object."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from rlops.errors import InvalidInput, Problem

PARAMS_FILE = "params.yaml"
SIGNALS = ("edit", "pairwise", "rating")  # the feedback kinds a rule turns into pairs
EXTRACT_KEYS = ("signals", "rating_min_gap", "edit_min_chars", "decontaminate", "suites_dir")


@dataclass(frozen=True)
class Window:
    """Feedback events count when their date (UTC) is within [start, end], both days inclusive."""

    start: dt.date
    end: dt.date

    def contains(self, when: dt.datetime) -> bool:
        return self.start <= when.astimezone(dt.timezone.utc).date() <= self.end


@dataclass(frozen=True)
class ExtractParams:
    interactions: str  # data.interactions: interaction log (.jsonl), relative to the repository root
    feedback: str  # data.feedback: feedback events (.jsonl), relative to the repository root
    window: Window | None  # data.window: only feedback given in this window is used; None = all
    signals: tuple[str, ...]  # extract.signals: which feedback kinds become pairs
    rating_min_gap: float  # extract.rating_min_gap: two rated answers to one prompt pair up when this far apart (never on a tie)
    edit_min_chars: int  # extract.edit_min_chars: edits changing fewer characters are dropped as trivial
    decontaminate: bool  # extract.decontaminate: drop pairs whose last user message is an eval prompt
    suites_dir: str  # extract.suites_dir: eval suites, <suite>/prompts.jsonl, relative to the root
    policy_name: str  # policy.name
    system_prompt: str  # policy.system_prompt: the prompt's system message when an interaction has none

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> ExtractParams:
        """Read the `data`, `extract` and `policy` sections; raise InvalidInput listing every problem."""
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

        def rel_path(sec: Mapping[str, Any], sec_name: str, key: str) -> str:
            value = need(sec, sec_name, key)
            if value is None:
                return ""
            if not isinstance(value, str) or not value.strip():
                bad(f"{sec_name}.{key}", f"must be a path relative to the repository root, not {value!r}")
                return ""
            path = PurePosixPath(value)
            if path.is_absolute() or ".." in path.parts:
                bad(f"{sec_name}.{key}", f"{value!r} points outside the repository; use a path relative to its root")
                return ""
            return path.as_posix()

        interactions = rel_path(data, "data", "interactions")
        feedback = rel_path(data, "data", "feedback")
        window = _window(data.get("window"), bad)  # absent and null both mean: no window

        for key in sorted(set(extract) - set(EXTRACT_KEYS)):
            bad(f"extract.{key}", f"unknown setting; known: {', '.join(EXTRACT_KEYS)}")

        signals: tuple[str, ...] = ()
        raw_signals = need(extract, "extract", "signals")
        if raw_signals is not None:
            if not isinstance(raw_signals, (list, tuple)) or not raw_signals:
                bad("extract.signals", f"must be a non-empty list drawn from {list(SIGNALS)}, not {raw_signals!r}")
            else:
                for i, name in enumerate(raw_signals):
                    if name not in SIGNALS:
                        bad(f"extract.signals[{i}]", f"{name!r} is not one of {list(SIGNALS)}")
                    elif name in raw_signals[:i]:
                        bad(f"extract.signals[{i}]", f"{name!r} is listed twice")
                signals = tuple(s for s in SIGNALS if s in raw_signals)

        gap = need(extract, "extract", "rating_min_gap")
        if gap is not None and (isinstance(gap, bool) or not isinstance(gap, (int, float)) or not gap >= 0):
            bad("extract.rating_min_gap", f"must be a number >= 0, not {gap!r}")
            gap = None
        chars = need(extract, "extract", "edit_min_chars")
        if chars is not None and (isinstance(chars, bool) or not isinstance(chars, int) or chars < 0):
            bad("extract.edit_min_chars", f"must be a whole number >= 0, not {chars!r}")
            chars = None
        decon = need(extract, "extract", "decontaminate")
        if decon is not None and not isinstance(decon, bool):
            bad("extract.decontaminate", f"must be true or false, not {decon!r}")
        suites_dir = rel_path(extract, "extract", "suites_dir")

        name = need(policy, "policy", "name")
        if name is not None and (not isinstance(name, str) or not name):
            bad("policy.name", f"must be a non-empty string, not {name!r}")
        system_prompt = need(policy, "policy", "system_prompt")
        if system_prompt is not None and (not isinstance(system_prompt, str) or not system_prompt.strip()):
            bad("policy.system_prompt", f"must be a non-empty string, not {system_prompt!r}")

        if problems:
            raise InvalidInput(problems, hint="fix the cycle spec or pipelines/conf, then run `rlops plan`")
        return cls(
            interactions=interactions,
            feedback=feedback,
            window=window,
            signals=signals,
            rating_min_gap=float(gap),
            edit_min_chars=int(chars),
            decontaminate=bool(decon),
            suites_dir=suites_dir,
            policy_name=str(name),
            system_prompt=str(system_prompt),
        )


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


def _window(value: Any, bad: Any) -> Window | None:
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

