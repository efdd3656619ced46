"""Filters over finished pairs: degenerate, contaminated (an eval prompt) and duplicate pairs are dropped."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from rlops.errors import InvalidInput, Problem, StageFailed
from rlops.extract.records import Message
from rlops.extract.rules import Pair, prompt_key, text_of


def normalise(text: str) -> str:
    """Lowercase, punctuation removed, whitespace collapsed: 'Where is  my order?!' -> 'where is my order'."""
    kept = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text.lower())
    return " ".join(kept.split())


def last_user_message(prompt: Sequence[Message]) -> str | None:
    return next((m["content"] for m in reversed(prompt) if m["role"] == "user"), None)


def suite_prompts(suites_dir: Path, display: str) -> frozenset[str]:
    """Normalised `prompt` of every row of every `<suite>/prompts.jsonl` under suites_dir."""
    if not suites_dir.is_dir():
        raise StageFailed(f"{display}: no such folder (extract.suites_dir)", hint="set extract.decontaminate: false to skip")
    files = sorted(suites_dir.glob("*/prompts.jsonl"))
    if not files:
        raise StageFailed(f"{display}: no <suite>/prompts.jsonl found", hint="set extract.decontaminate: false to skip")
    prompts: set[str] = set()
    problems: list[Problem] = []
    for path in files:
        shown = f"{display}/{path.relative_to(suites_dir).as_posix()}"
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as e:
                problems.append(Problem(shown, number, "", f"not JSON: {e.msg}"))
                continue
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                problems.append(Problem(shown, number, "prompt", "missing or not a string"))
                continue
            prompts.add(normalise(row["prompt"]))
    if problems:
        raise InvalidInput(problems, hint="the eval suites are read to keep their prompts out of training data")
    return frozenset(prompts)


def drop_reason(pair: Pair, seen: set[tuple[object, ...]], contaminants: frozenset[str]) -> str | None:
    """Why `pair` should not be kept, or None (then it is added to `seen`). Checks run in this order."""
    chosen, rejected = " ".join(text_of(pair.chosen).lower().split()), " ".join(text_of(pair.rejected).lower().split())
    if chosen == rejected:
        return "identical_answers"
    last = last_user_message(pair.prompt)
    if contaminants and last is not None and normalise(last) in contaminants:
        return "contaminated"
    key = (prompt_key(pair.prompt), chosen, rejected)
    if key in seen:
        return "duplicate_pair"
    seen.add(key)
    return None


def filter_pairs(pairs: Iterable[Pair], contaminants: frozenset[str]) -> tuple[list[Pair], list[tuple[Pair, str]]]:
    """Kept pairs and the dropped ones with their reason; of two duplicates, the first (in `pairs` order) is kept."""
    kept: list[Pair] = []
    dropped: list[tuple[Pair, str]] = []
    seen: set[tuple[object, ...]] = set()
    for pair in pairs:
        reason = drop_reason(pair, seen, contaminants)
        if reason is None:
            kept.append(pair)
        else:
            dropped.append((pair, reason))
    return kept, dropped
