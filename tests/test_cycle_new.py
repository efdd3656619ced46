"""`rlops cycle new` on the example history: the written spec validates, its window starts the day after the last
one ended, it trains from production on the same data; it does nothing when nothing (or too little) is new, and
never overwrites a file. The project's real specs/, data/example/ and pipelines/conf/ are copied into a temporary
root; the event counts are recounted here from data/example/feedback.jsonl.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import yaml

from rlops import records
from rlops.cadence import new_cycle, write_new
from rlops.cli import main
from rlops.errors import EXIT_INVALID, EXIT_OK, RlopsError
from rlops.spec.validate import validate_paths

ROOT = Path(__file__).resolve().parent.parent
LAST = ROOT / "specs/cycles/0001-damaged-orders.yaml"


@pytest.fixture
def project(tmp_path) -> Path:
    for part in ("specs", "data/example", "pipelines/conf"):
        shutil.copytree(ROOT / part, tmp_path / part)
    return tmp_path


def events_after(day: dt.date, until: dt.date) -> int:
    """Feedback events of a known kind dated in (day, until]; the example's deliberately malformed lines are skipped."""
    days = []
    for line in (ROOT / "data/example/feedback.jsonl").read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and r.get("kind") in records.KINDS and records.is_timestamp(r.get("timestamp")):
            days.append(dt.datetime.fromisoformat(r["timestamp"].upper().replace("Z", "+00:00"))
                        .astimezone(dt.timezone.utc).date())
    return sum(day < d <= until for d in days)


def test_writes_a_valid_spec_whose_window_continues_the_last(project, capsys):
    last = yaml.safe_load(LAST.read_text())
    assert main(["cycle", "new", "--root", str(project), "--to", "2026-12-01"]) == EXIT_OK
    (path,) = [p for p in (project / "specs/cycles").glob("0002-*.yaml")]
    assert path.name == "0002-feedback-2026-11-25-to-2026-12-01.yaml"  # as the README says
    assert f"wrote specs/cycles/{path.name}" in capsys.readouterr().out
    assert validate_paths([path], project) == []
    spec = yaml.safe_load(path.read_text())
    ended = dt.date.fromisoformat(str(last["feedback"]["window"]["to"]))
    assert dt.date.fromisoformat(str(spec["feedback"]["window"]["from"])) == ended + dt.timedelta(days=1)
    assert str(spec["feedback"]["window"]["to"]) == "2026-12-01"
    assert (spec["cycle"], spec["parent"], spec["policy"]) == (last["cycle"] + 1, "production", last["policy"])
    assert {k: spec["feedback"][k] for k in ("interactions", "feedback")} == \
           {k: last["feedback"][k] for k in ("interactions", "feedback")}
    for section in ("extract", "train", "evaluate", "gates", "promotion"):
        assert spec[section] == last[section]
    n = events_after(ended, dt.date(2026, 12, 1))
    assert n > 0 and f"{n} new feedback events" in spec["rationale"]
    assert "replace the rationale" in path.read_text()  # the comment that asks a person to write it
    # and a second run finds nothing new: the new spec's window reaches --to
    assert main(["cycle", "new", "--root", str(project), "--to", "2026-12-01"]) == EXIT_OK
    assert "nothing new" in capsys.readouterr().out
    assert len(list((project / "specs/cycles").glob("*.yaml"))) == 2


def test_min_events_leaves_everything_as_it_was(project, capsys):
    last = yaml.safe_load(LAST.read_text())
    n = events_after(dt.date.fromisoformat(str(last["feedback"]["window"]["to"])), dt.date(2026, 12, 1))
    before = sorted(p.name for p in (project / "specs/cycles").iterdir())
    assert main(["cycle", "new", "--root", str(project), "--to", "2026-12-01", "--min-events", str(n + 1)]) == EXIT_OK
    assert f"nothing to do: {n} new feedback event(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (project / "specs/cycles").iterdir()) == before
    assert new_cycle(project, to=dt.date(2026, 12, 1), min_events=n).path is not None  # exactly n is enough


def test_nothing_new_in_an_empty_window(project):
    # the day after the last window: the example logs hold no feedback from 2026-11-28 on
    result = new_cycle(project, to=dt.date(2026, 11, 24))
    assert result.path is None and "nothing new" in result.message
    later = new_cycle(project, to=dt.date(2026, 11, 25) + dt.timedelta(days=0), min_events=1)
    assert (later.path is None) == (events_after(dt.date(2026, 11, 24), dt.date(2026, 11, 25)) == 0)


def test_never_overwrites(tmp_path):
    target = tmp_path / "0002-x.yaml"
    write_new(target, "first\n")
    with pytest.raises(RlopsError, match="exists already"):
        write_new(target, "second\n")
    assert target.read_text() == "first\n"
    assert [p.name for p in tmp_path.iterdir()] == ["0002-x.yaml"]  # no temporary file left behind


def test_a_last_spec_without_a_window_is_refused_with_the_fix(project, capsys):
    text = LAST.read_text().replace("  window: {from: 2026-11-01, to: 2026-11-24}\n", "")
    (project / "specs/cycles" / LAST.name).write_text(text)
    assert main(["cycle", "new", "--root", str(project)]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "feedback.window: missing" in err and "add feedback.window" in err
    assert len(list((project / "specs/cycles").glob("*.yaml"))) == 1


def test_a_bad_date_is_refused(project, capsys):
    assert main(["cycle", "new", "--root", str(project), "--to", "2026-13-01"]) == EXIT_INVALID
    assert "--to: '2026-13-01' is not a date" in capsys.readouterr().err
