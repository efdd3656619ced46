"""One import: convert a source with a format's importer and write the four outputs into one folder, atomically.

The folder holds interactions.jsonl, feedback.jsonl, quarantine.jsonl and import-report.json, and is replaced as a
whole (a killed import leaves the previous one). Here, not in the importers, every record is checked for what
only the whole import can know: an interaction id seen twice, a feedback event about an interaction that was not
imported. Both are quarantined with the reason. Same input and options: byte-identical outputs.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlops.errors import InvalidInput, Problem
from rlops.io import atomic_dir
from rlops.observe.importers import load
from rlops.observe.importers.builders import DEFAULT_TIMESTAMP, Context, Options
from rlops.observe.importers.source import Where, input_files

OUTPUTS = ("interactions.jsonl", "feedback.jsonl", "quarantine.jsonl", "import-report.json")


@dataclass
class Summary:
    fmt: str
    out: Path
    read: int = 0
    read_unit: str = "records"
    interactions: int = 0
    feedback: Counter = field(default_factory=Counter)
    quarantined: int = 0
    unmapped: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def nothing_imported(self) -> bool:
        return self.interactions == 0 and not self.feedback


def import_logs(fmt: str, source: Path, out: Path, options: Options | None = None) -> Summary:
    """Import `source` (a file or a folder) in format `fmt` into the folder `out`."""
    importer = load(fmt)
    source, out = Path(source), Path(out)
    if not source.exists():
        raise InvalidInput([Problem(str(source), None, "PATH", "no such file or folder")],
                           hint="name an export file, or a folder of .json/.jsonl files")
    files = input_files(source, out)
    if not files:
        raise InvalidInput([Problem(str(source), None, "PATH", "holds no .json, .jsonl or .ndjson file")])
    _check_out(out)
    ctx = Context(fmt, options or Options(), out=out)
    summary = Summary(fmt, out, read_unit=importer.read_unit)
    with atomic_dir(out) as tmp:
        with (tmp / OUTPUTS[0]).open("w", encoding="utf-8") as fi, (tmp / OUTPUTS[1]).open("w", encoding="utf-8") as ff:
            _write(importer.function(ctx, source), ctx, summary, fi, ff)
            for f in (fi, ff):
                f.flush()
                os.fsync(f.fileno())
        _write_lines(tmp / OUTPUTS[2], (_dumps(q) for q in ctx.quarantined))
        summary.read, summary.quarantined = ctx.read, len(ctx.quarantined)
        summary.unmapped = dict(sorted(ctx.unmapped.items()))
        summary.skipped = dict(sorted(ctx.skipped.items()))
        summary.report = _report(ctx, summary, source, [name for _, _, name in files])
        _write_lines(tmp / OUTPUTS[3], [json.dumps(summary.report, indent=2, ensure_ascii=False)])
    return summary


def _check_out(out: Path) -> None:
    # the folder is replaced as a whole: never wipe files that a previous import did not write
    if out.exists() and not out.is_dir():
        raise InvalidInput([Problem(str(out), None, "--out", "exists and is not a folder")])
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OUTPUTS)
        if foreign:
            raise InvalidInput([Problem(str(out), None, "--out", f"holds files that are not an import's outputs: "
                                                                 f"{', '.join(foreign[:5])}")],
                               hint="choose an empty or new folder for --out; it is replaced as a whole")


_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _dumps(obj: Any) -> str:
    # readable UTF-8, but the characters that str.splitlines() breaks on stay escaped: one record, one line
    text = json.dumps(obj, ensure_ascii=False)
    return text.translate(_LINE_BREAKS) if "\x85" in text or "\u2028" in text or "\u2029" in text else text


def _write_lines(path: Path, lines: Any) -> None:
    with path.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _referenced(event: dict[str, Any]) -> list[str]:
    ids = [event["interaction_id"]]
    details = event.get(event["kind"], {})
    if event["kind"] == "pairwise":
        ids += [details.get("chosen_id"), details.get("rejected_id")]
    elif event["kind"] == "ranking":
        ids += list(details.get("ranked_ids", []))
    return list(dict.fromkeys(i for i in ids if i))


class _Places:
    """Where each id was first seen, packed as file index and line in one int (ids can number millions)."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {}
        self.names: list[str] = []
        self.seen: dict[str, int] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.seen

    def add(self, key: str, where: Where) -> None:
        index = self.files.setdefault(where.file, len(self.names))
        if index == len(self.names):
            self.names.append(where.file)
        self.seen[key] = index << 32 | (where.line or 0)

    def __getitem__(self, key: str) -> str:
        packed = self.seen[key]
        line = packed & 0xFFFFFFFF
        return f"{self.names[packed >> 32]}:{line}" if line else self.names[packed >> 32]


def _write(stream: Iterator[tuple[str, dict[str, Any], Where]], ctx: Context, summary: Summary, fi, ff) -> None:
    interactions, events = _Places(), _Places()  # to name the first record when an id repeats
    for kind, record, where in stream:
        if kind == "interaction":
            iid = record["interaction_id"]
            if iid in interactions:
                ctx.quarantine(where, f"interaction_id: {iid} repeats the interaction from {interactions[iid]}")
                continue
            interactions.add(iid, where)
            fi.write(_dumps(record) + "\n")
            summary.interactions += 1
            continue
        missing = [i for i in _referenced(record) if i not in interactions]
        if missing:
            ctx.quarantine(where, f"interaction_id: {missing[0]} is not among the imported interactions "
                                  f"(not in the export, or quarantined); {record['kind']} event {record['event_id']}")
            continue
        eid = record["event_id"]
        if eid in events:
            ctx.quarantine(where, f"event_id: {eid} repeats the event from {events[eid]}")
            continue
        events.add(eid, where)
        ff.write(_dumps(record) + "\n")
        summary.feedback[record["kind"]] += 1


def _report(ctx: Context, summary: Summary, source: Path, files: list[str]) -> dict[str, Any]:
    opts = ctx.options
    return {
        "format": ctx.fmt,
        "source": str(source),
        "files": files,
        "options": {"policy": opts.policy, "agent_version": opts.agent_version,
                    "timestamp": opts.timestamp or DEFAULT_TIMESTAMP,
                    "scales": {k: list(v) for k, v in sorted(opts.scales.items())}},
        "read": ctx.read,
        "read_unit": summary.read_unit,
        "interactions": summary.interactions,
        "feedback": {"total": sum(summary.feedback.values()), "by_kind": dict(sorted(summary.feedback.items()))},
        "quarantined": len(ctx.quarantined),
        "unmapped": dict(sorted(ctx.unmapped.items())),
        "skipped": dict(sorted(ctx.skipped.items())),
        "defaulted": dict(sorted(ctx.defaults.items())),
        "rating_scales": dict(sorted(ctx.scales.items())),
        "outputs": list(OUTPUTS),
    }
