"""What `rlops import` needs around `import_logs`: options from its arguments, and the printed summary."""

from __future__ import annotations

from typing import Any

from rlops.errors import InvalidInput, Problem
from rlops.observe.importers.builders import Options, timestamp
from rlops.observe.importers.driver import OUTPUTS, Summary

SHOWN_KEYS = 8


def options_from(args: Any) -> Options:
    """Options from the parsed arguments; every bad one is reported with the fix."""
    problems: list[Problem] = []
    when = None
    if args.timestamp:
        naive: list[bool] = []
        try:
            when = timestamp(args.timestamp, naive)
            if naive:
                raise ValueError("it has no time-zone offset")
        except ValueError as e:
            problems.append(Problem("", None, "--timestamp", f"{args.timestamp!r} is not an RFC 3339 date-time "
                                                             f"with an offset ({e}); e.g. 2026-01-31T00:00:00Z"))
    scales: dict[str, tuple[float, float]] = {}
    for item in args.scale:
        name, _, bounds = item.partition("=")
        try:
            lo, hi = (float(x) for x in bounds.split(","))
            if not name or lo >= hi:
                raise ValueError
        except ValueError:
            problems.append(Problem("", None, "--scale",
                                    f"{item!r} is not NAME=LO,HI with LO < HI, e.g. helpfulness=1,5"))
            continue
        scales[name] = (int(lo) if lo.is_integer() else lo, int(hi) if hi.is_integer() else hi)
    if problems:
        raise InvalidInput(problems)
    return Options(policy=args.policy, agent_version=args.agent_version, timestamp=when, scales=scales)


def print_summary(summary: Summary, source: str) -> None:
    out = summary.out
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(summary.feedback.items()))
    print(f"rlops import {summary.fmt}: read {summary.read} {summary.read_unit} from {source}")
    print(f"  interactions  {summary.interactions:<6} {out / OUTPUTS[0]}")
    print(f"  feedback      {sum(summary.feedback.values()):<6} {out / OUTPUTS[1]}" + (f" ({kinds})" if kinds else ""))
    print(f"  quarantined   {summary.quarantined:<6} {out / OUTPUTS[2]}")
    skipped = sorted(summary.skipped.items(), key=lambda kv: (-kv[1], kv[0]))
    print(f"  skipped       {sum(summary.skipped.values()):<6} " + "; ".join(f"{k} ({n})" for k, n in skipped)
          if skipped else "  skipped       0")
    keys = sorted(summary.unmapped.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{k} ({n})" for k, n in keys[:SHOWN_KEYS])
    more = f", and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
    print(f"  unmapped keys {len(keys):<6} {shown}{more}" if keys else "  unmapped keys 0")
    print(f"  report        {out / OUTPUTS[3]}")


def nothing_imported(summary: Summary, source: str) -> tuple[str, bool] | None:
    """When the import wrote no record: what to tell the user, and whether it is an error (None when it wrote some).

    Quarantined records are problems to fix (the message points at quarantine.jsonl); records that were only
    skipped are by design (a score about a session has no answer to train on), so that is said, not an error."""
    if not summary.nothing_imported:
        return None
    if summary.quarantined:
        return (f"rlops import: nothing imported from {source}: {summary.quarantined} records quarantined, "
                f"see {summary.out / OUTPUTS[2]}"), True
    if summary.skipped:
        return (f"rlops import: nothing to import from {source}: {sum(summary.skipped.values())} records skipped "
                "(listed above); they hold nothing an interaction or feedback event can carry"), False
    return f"rlops import: nothing imported from {source}: it holds no {summary.read_unit}", True
