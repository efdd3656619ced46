"""`rlops cycle new`: write the next cycle spec from the last one, when enough new feedback has arrived.

The next spec is the last one (highest `cycle:` in specs/cycles/) with four changes:

- `cycle` is one more, and the file is `NNNN-feedback-FROM-to-TO.yaml`;
- `parent: production`: train from whatever serves production when the cycle runs (`rlops promote` refuses the
  proposal as stale when production moved meanwhile);
- `feedback.window` continues the last one: the window's dates are inclusive days, so the new one starts the day
  after the last one's `to` (no day counted twice, none skipped) and ends today (UTC) or at `--to`;
- `rationale` states what is new (events per kind in the window, the data paths) and says that a person must
  rewrite it. Why not leave it empty: `rlops validate` (and the cycle-pr workflow) would then reject every
  scheduled spec, so the schedule could never open a pull request to review. The written line is true and
  validates; it names itself as machine-written, and review is where a person replaces it with the problem seen.

The data paths, extraction, training, evaluation, gates and promotion stay as the last cycle declared them.
Nothing is written when the window would be empty, or when fewer than `min_events` feedback events fall in it
(counted with DuckDB over the same logs and by the same rule as the extract stage: the event's UTC date). The
spec is validated before it is written, written atomically, and never over an existing file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlops import records
from rlops.errors import InvalidInput, Problem, RlopsError

CYCLES_DIR = "specs/cycles"
_NAME = re.compile(r"([0-9]{4,})-[a-z0-9][a-z0-9-]*\.ya?ml\Z")
HEADER = "# yaml-language-server: $schema=../../rlops/spec/schemas/cycle.schema.json\n"
REVIEW = ("# Written by `rlops cycle new`. Before merging, replace the rationale with the problem seen in production "
          "and\n# the evidence for it (it goes into the pull request and the audit record).\n")


@dataclass(frozen=True)
class NewCycle:
    """What `new_cycle` decided: the spec it wrote (None when it wrote nothing) and why."""

    path: Path | None
    message: str
    events: dict[str, int]  # feedback events in the new window, per kind
    window: tuple[str, str] | None


def cycle_specs(root: Path) -> list[tuple[int, Path]]:
    """(number, path) of every cycle spec file, by the number its name starts with."""
    folder = Path(root) / CYCLES_DIR
    found = [(int(m.group(1)), p) for p in folder.glob("*.y*ml") if (m := _NAME.match(p.name))]
    return sorted(found)


def last_spec(root: Path) -> tuple[Path, dict[str, Any]]:
    """The spec with the highest cycle number, loaded (with its problems, if it does not load)."""
    from rlops.spec.yamlload import load_yaml

    specs = cycle_specs(root)
    if not specs:
        raise InvalidInput([Problem(CYCLES_DIR, None, "", "no cycle spec to continue from")],
                           hint="write the first cycle by hand (see specs/cycles/0001-damaged-orders.yaml in the README)")
    path = specs[-1][1]
    loaded = load_yaml(path, root)
    if not isinstance(loaded.data, dict):
        raise InvalidInput([Problem(loaded.file, None, "", "is not a mapping")], hint="fix the last cycle spec")
    return path, loaded.data


def _day(value: Any, file: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput([Problem(file, None, field, f"{value!r} is not a date YYYY-MM-DD")],
                           hint="fix the last cycle spec (`rlops validate` lists every problem)") from None


def count_events(root: Path, paths: list[str], start: dt.date, end: dt.date) -> dict[str, int]:
    """Feedback events per kind whose timestamp's UTC date is in [start, end] (the extract stage's window rule)."""
    from rlops.extract import engine

    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix=".cycle-new-") as scratch:
        con = engine.connect("1GB", None, Path(scratch))
        try:
            con.execute("SET TimeZone = 'UTC'")
            for i, setting in enumerate(paths):
                source = engine.resolve(root, setting, f"feedback.feedback[{i}]")
                scan = engine.reader(con, source, {"kind": "VARCHAR", "timestamp": "VARCHAR"})
                rows = con.execute(
                    f"""SELECT kind, count(*) FROM (SELECT kind, coalesce(TRY_CAST("timestamp" AS TIMESTAMPTZ),
                        TRY_CAST(upper("timestamp") AS TIMESTAMPTZ)) AS ts FROM {scan})
                        WHERE list_contains(?, kind) AND CAST(ts AS DATE) BETWEEN ? AND ? GROUP BY kind ORDER BY kind""",
                    [list(records.KINDS), start, end]).fetchall()
                for kind, n in rows:
                    counts[kind] = counts.get(kind, 0) + int(n)
        finally:
            con.close()
    return counts


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]


def spec_text(last: dict[str, Any], number: int, start: dt.date, end: dt.date, events: dict[str, int]) -> str:
    """The next spec's YAML: the last one's sections, with the new number, parent, window and rationale."""
    fb = dict(last["feedback"])
    fb["window"] = {"from": start, "to": end}  # dates, so YAML writes them unquoted, as a person would
    total = sum(events.values())
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(events.items()))
    rationale = (f"Scheduled cycle {number}: {total} new feedback events ({kinds}) from {start} to {end} in "
                 f"{', '.join(_as_list(fb['feedback']))}, on what production served. Machine-written by `rlops cycle "
                 f"new`: a reviewer replaces this with the problem seen in production and its evidence.")
    spec: dict[str, Any] = {"cycle": number, "policy": last["policy"], "parent": "production", "rationale": rationale,
                            "feedback": fb}
    spec.update({k: v for k, v in last.items() if k not in spec})
    body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)
    at = body.index("rationale:")
    return HEADER + body[:at] + REVIEW + body[at:]


def write_new(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically, refusing when `path` exists (os.link fails on an existing name, so two
    scheduled runs racing cannot overwrite each other)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise RlopsError(f"{path} exists already; rlops cycle new never overwrites a spec",
                             hint="remove or rename it, or commit it and run `rlops cycle new` again") from None
    finally:
        os.unlink(tmp)
    from rlops.io import fsync_dir

    fsync_dir(path.parent)
    return path


def new_cycle(root: Path, to: dt.date | None = None, min_events: int = 1, today: dt.date | None = None) -> NewCycle:
    """Write the next cycle spec, or nothing (with the reason) when there is nothing new enough."""
    from rlops.spec.validate import validate_file
    from rlops.spec.yamlload import relative_name

    root = Path(root)
    if min_events < 0:
        raise InvalidInput([Problem("command line", None, "--min-events", f"{min_events} is negative")])
    path, last = last_spec(root)
    file = relative_name(path, root)
    window = (last.get("feedback") or {}).get("window") if isinstance(last.get("feedback"), dict) else None
    if not isinstance(window, dict) or "to" not in window:
        raise InvalidInput([Problem(file, None, "feedback.window", "missing: the next window starts after it ends")],
                           hint="add feedback.window {from, to} to the last cycle, or write the next spec by hand")
    for key in ("policy", "feedback"):
        if key not in last:
            raise InvalidInput([Problem(file, None, key, "missing")], hint="fix the last cycle spec")
    start = _day(window["to"], file, "feedback.window.to") + dt.timedelta(days=1)
    end = to or today or dt.datetime.now(dt.timezone.utc).date()
    if end < start:
        return NewCycle(None, f"nothing new: {file}'s window ends {window['to']}, so the next would start {start}, "
                              f"after {end}", {}, None)
    events = count_events(root, _as_list(last["feedback"].get("feedback")), start, end)
    total = sum(events.values())
    if total == 0 or total < min_events:
        need = f" (--min-events {min_events})" if min_events > 1 else ""
        return NewCycle(None, f"nothing to do: {total} new feedback event(s) from {start} to {end}{need}; "
                              f"{file} stays the last cycle", events, (str(start), str(end)))
    number = int(last.get("cycle", 0)) + 1
    number = max(number, cycle_specs(root)[-1][0] + 1)
    text = spec_text(last, number, start, end, events)
    target = path.parent / f"{number:04d}-feedback-{start}-to-{end}.yaml"
    # validate the text under its final name, in a scratch folder beside it: nothing invalid reaches specs/cycles/
    with tempfile.TemporaryDirectory(prefix=".cycle-new-", dir=path.parent) as scratch:
        trial = Path(scratch) / target.name
        trial.write_text(text, encoding="utf-8")
        problems = validate_file(trial, root)
    if problems:
        shown = [Problem(relative_name(target, root), p.line, p.field, p.message) for p in problems]
        raise InvalidInput(shown, hint=f"the next spec is made from {file}: fix it and run `rlops cycle new` again")
    write_new(target, text)
    return NewCycle(target, f"wrote {relative_name(target, root)}: cycle {number}, window {start} to {end}, "
                            f"{total} new feedback event(s), parent production; review and rewrite its rationale",
                    events, (str(start), str(end)))
