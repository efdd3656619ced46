"""The extract stage: logs and feedback in, pairs.jsonl + quarantine.jsonl + signals.json/.md out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlops.extract.filters import filter_pairs, suite_prompts
from rlops.extract.params import ExtractParams
from rlops.extract.records import FeedbackEvent, Quarantined, load_feedback, load_interactions
from rlops.extract.report import USED, signals_markdown, signals_report
from rlops.extract.rules import RULES, Pair
from rlops.io import atomic_write_json, atomic_write_lines, atomic_write_text

OUTPUTS = ("pairs.jsonl", "quarantine.jsonl", "signals.json", "signals.md")


@dataclass(frozen=True)
class Extraction:
    pairs: list[Pair]  # kept pairs, in their stable order
    quarantined: list[Quarantined]
    report: dict[str, Any]  # signals.json


def extract(params: ExtractParams, root: Path) -> Extraction:
    """Everything the stage computes, in memory; nothing is written."""
    interactions = load_interactions(root / params.interactions, params.interactions, params.system_prompt)
    feedback = load_feedback(root / params.feedback, params.feedback, interactions)

    status: dict[str, str] = {}  # event_id -> USED or the reason it was dropped
    by_kind: dict[str, list[FeedbackEvent]] = {kind: [] for kind in RULES}
    for event in feedback.records:
        if params.window is not None and not params.window.contains(event.timestamp):
            status[event.event_id] = "outside_window"
        elif event.kind not in RULES:
            status[event.event_id] = "no_signal"
        elif event.kind not in params.signals:
            status[event.event_id] = "signal_disabled"
        else:
            by_kind[event.kind].append(event)

    pairs: list[Pair] = []
    for kind in params.signals:
        result = RULES[kind](by_kind[kind], interactions.records, params)
        pairs += result.pairs
        status.update(result.dropped)
    pairs.sort(key=Pair.sort_key)

    contaminants = suite_prompts(root / params.suites_dir, params.suites_dir) if params.decontaminate else frozenset()
    kept, dropped = filter_pairs(pairs, contaminants)
    for pair in kept:
        status.update(dict.fromkeys(pair.event_ids, USED))
    for pair, reason in dropped:
        for event_id in pair.event_ids:
            status.setdefault(event_id, reason)  # an event in any kept pair stays used

    report = signals_report(interactions, feedback, status, kept)
    return Extraction(kept, interactions.quarantined + feedback.quarantined, report)


def pair_line(pair: Pair) -> str:
    return json.dumps(pair.to_row(), ensure_ascii=False)


def write_outputs(extraction: Extraction, params: ExtractParams, out_dir: Path) -> None:
    """Write the four outputs, each atomically; signals.json goes last, so its presence means the rest is complete."""
    (out_dir / "signals.json").unlink(missing_ok=True)
    quarantine = (json.dumps(q.to_json(), ensure_ascii=False) for q in extraction.quarantined)
    atomic_write_lines(out_dir / "quarantine.jsonl", quarantine)
    atomic_write_lines(out_dir / "pairs.jsonl", (pair_line(p) for p in extraction.pairs))
    atomic_write_text(out_dir / "signals.md", signals_markdown(extraction.report, params))
    atomic_write_json(out_dir / "signals.json", extraction.report)


def run(params: Mapping[str, Any], root: Path, out_dir: Path) -> dict[str, Any]:
    """The DVC stage: read params.yaml's data/extract/policy sections, write out_dir, return signals.json's content."""
    settings = ExtractParams.from_mapping(params)
    extraction = extract(settings, Path(root))
    write_outputs(extraction, settings, Path(out_dir))
    return extraction.report
