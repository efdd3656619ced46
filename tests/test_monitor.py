"""`rlops monitor`: per-version production figures from real log files (and a real Recorder's folder), canary
against production, the DVC metric file, the exit code, and the audit report's monitoring and EU AI Act sections.

The logs are generated here: users are assigned to the canary stickily (every fifth user), as `rlops serve` does;
"worse" makes the canary refuse, fail tools, get edited and rated low more often and answer slower. The expected
figures are recomputed from the generated records in plain Python, not copied from the monitor's output.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from rlops import components, layout
from rlops.cli import main
from rlops.errors import EXIT_CANARY_WORSE, EXIT_INVALID, EXIT_OK
from rlops.monitor import Options, collect, default_sources
from rlops.monitor.compare import unpaired_bounds

REFUSED = "I'm sorry, but I can't help with that."


def make_logs(root: Path, n: int = 2000, canary_worse: bool = False, seed: int = 1, users: int = 300,
              days: int = 7) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    ix, fb = [], []
    for i in range(n):
        u = rng.randrange(users)
        stage = "canary" if u % 5 == 0 else "production"
        bad = canary_worse and stage == "canary"
        ts = f"2026-11-{1 + i * days // n:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z"
        refuse = rng.random() < (0.3 if bad else 0.05)
        iid = f"i-{i:06d}"
        error = rng.random() < (0.2 if bad else 0.02)
        ix.append({"schema": "rlops.interaction/v1", "interaction_id": iid, "timestamp": ts, "user": f"u-{u}",
                   "agent": {"name": "support-agent", "version": "v2" if stage == "canary" else "v1", "stage": stage},
                   "input_messages": [{"role": "user", "content": "My order arrived broken."}],
                   "output_messages": [{"role": "assistant", "content": REFUSED if refuse else "A new one ships today."}],
                   "steps": [{"type": "tool_call", "name": "lookup_order", "error": "timeout"}] if error else [],
                   "outcome": {"status": "ok", "latency_ms": round(rng.gauss(900 if bad else 600, 50), 1)}})
        if rng.random() < 0.5:
            good = rng.random() < (0.4 if bad else 0.8) and not refuse
            fb.append({"schema": "rlops.feedback/v1", "event_id": f"f-{i:06d}", "interaction_id": iid,
                       "timestamp": ts, "actor": f"customer:u-{u}", "kind": "rating",
                       "rating": {"value": 5 if good else 1, "scale": [1, 5]}})
        if rng.random() < (0.3 if bad else 0.1):
            fb.append({"schema": "rlops.feedback/v1", "event_id": f"e-{i:06d}", "interaction_id": iid,
                       "timestamp": ts, "actor": "staff:alice", "kind": "edit",
                       "edit": {"output_messages": [{"role": "assistant", "content": "We send a new one today."}]}})
    (root / "logs").mkdir(parents=True, exist_ok=True)
    (root / "logs/interactions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ix))
    (root / "logs/feedback.jsonl").write_text("".join(json.dumps(r) + "\n" for r in fb))
    return ix, fb


ARGS = ["--interactions", "logs/interactions.jsonl", "--feedback", "logs/feedback.jsonl"]


def run_monitor(root: Path, *extra: str) -> int:
    return main(["monitor", "--root", str(root), *ARGS, *extra])


def test_a_clearly_worse_canary_is_flagged_with_exit_10(tmp_path, capsys):
    make_logs(tmp_path, canary_worse=True)
    assert run_monitor(tmp_path) == EXIT_CANARY_WORSE
    doc = json.loads((tmp_path / layout.MONITOR).read_text())
    assert doc["flagged"] == ["v2"]
    (canary,) = doc["canaries"]
    assert canary["against"] == ["v1"] and canary["worse"]
    worse = {m["metric"] for m in canary["metrics"] if m["worse"]}
    assert {"rating", "edit_rate", "tool_error_rate", "latency_ms", "over_refusal_rate"} <= worse
    for m in canary["metrics"]:  # oriented like the gate: positive = canary better, so a worse canary is below 0
        assert m["ci_low"] <= m["diff"] <= m["ci_high"]
    assert "SIGNIFICANTLY WORSE" in capsys.readouterr().out


def test_an_equal_canary_is_not_flagged(tmp_path):
    make_logs(tmp_path, canary_worse=False)
    assert run_monitor(tmp_path) == EXIT_OK
    doc = json.loads((tmp_path / layout.MONITOR).read_text())
    assert doc["flagged"] == [] and not doc["canaries"][0]["worse"]
    assert all(m["tested"] for m in doc["canaries"][0]["metrics"])  # tested, and found no worse


def test_figures_match_a_recount_of_the_records(tmp_path):
    ix, fb = make_logs(tmp_path, canary_worse=True, n=600)
    doc = collect(tmp_path, Options(["logs/interactions.jsonl"], ["logs/feedback.jsonl"]))
    by = {(v["version"], v["stage"]): v for v in doc["versions"]}
    assert set(by) == {("v1", "production"), ("v2", "canary")}
    for (version, stage), v in by.items():
        mine = [r for r in ix if r["agent"]["version"] == version and r["agent"]["stage"] == stage]
        ids = {r["interaction_id"] for r in mine}
        assert v["interactions"] == len(mine) and v["users"] == len({r["user"] for r in mine})
        assert v["feedback_rate"] == round(len({f["interaction_id"] for f in fb if f["interaction_id"] in ids})
                                           / len(mine), 6)
        assert v["edit_rate"] == round(len({f["interaction_id"] for f in fb if f["kind"] == "edit"
                                            and f["interaction_id"] in ids}) / len(mine), 6)
        assert v["tool_error_rate"] == round(sum(bool(r["steps"]) for r in mine) / len(mine), 6)
        refused = [r for r in mine if r["output_messages"][0]["content"] == REFUSED]
        assert v["refusal_rate"] == round(len(refused) / len(mine), 6)
        ratings = [(f["rating"]["value"] - 1) / 4 for f in fb if f["kind"] == "rating" and f["interaction_id"] in ids]
        assert v["rating"] == pytest.approx(sum(ratings) / len(ratings), abs=1e-6)
        days = sorted({r["timestamp"][:10] for r in mine})
        assert [b["start"] for b in v["buckets"]] == days
        assert sum(b["interactions"] for b in v["buckets"]) == len(mine)
    assert doc["figures"]["v2"]["canary"]["edit_rate"] == by[("v2", "canary")]["edit_rate"]  # DVC's flat view


def test_week_buckets_start_on_monday(tmp_path):
    make_logs(tmp_path, n=300, days=14)
    doc = collect(tmp_path, Options(["logs/interactions.jsonl"], ["logs/feedback.jsonl"], bucket="week"))
    starts = {b["start"] for v in doc["versions"] for b in v["buckets"]}
    import datetime as dt

    assert starts and all(dt.date.fromisoformat(s).weekday() == 0 for s in starts)


def test_refusals_are_graded_by_the_registered_metric(tmp_path, monkeypatch):
    """The monitor calls the evaluation's `refusal` metric through the registry, so an improved grader applies."""
    make_logs(tmp_path, n=300)
    before = collect(tmp_path, Options(["logs/interactions.jsonl"], []))
    assert before["versions"][0]["refusal_rate"] > 0
    real = components.get("metric", "refusal")
    monkeypatch.setitem(components._REGISTERED["metric"], "refusal",
                        components.Metric(**{**real.__dict__, "function": lambda doc, text: 1.0}))
    after = collect(tmp_path, Options(["logs/interactions.jsonl"], []))
    assert all(v["refusal_rate"] == 1.0 for v in after["versions"])


def test_reads_a_recorder_folder(tmp_path):
    from rlops.observe import Recorder

    with Recorder(tmp_path / "logs") as rec:
        for i in range(6):
            iid = rec.record_interaction({
                "agent": {"name": "support-agent", "version": "v1", "stage": "production"}, "user": f"u{i % 2}",
                "input_messages": [{"role": "user", "content": "hi"}],
                "output_messages": [{"role": "assistant", "content": "Hello, how can I help?"}],
                "outcome": {"status": "ok", "latency_ms": 100.0 + i}})
            if i % 3 == 0:
                rec.record_feedback({"interaction_id": iid, "actor": "customer:u", "kind": "rating",
                                     "rating": {"value": 1, "scale": [0, 1]}})
    doc = collect(tmp_path, Options(["logs/interactions"], ["logs/feedback"]))
    (v,) = doc["versions"]
    assert (v["interactions"], v["users"], v["rated"], v["rating"]) == (6, 2, 2, 1.0)
    assert v["latency_ms"]["p50"] == 102.0


def test_missing_logs_are_refused_and_nothing_is_written(tmp_path, capsys):
    assert main(["monitor", "--root", str(tmp_path), "--interactions", "nope.jsonl"]) == EXIT_INVALID
    assert "--interactions: 'nope.jsonl': no such file" in capsys.readouterr().err
    assert not (tmp_path / layout.MONITOR).exists()


def test_without_logs_or_a_spec_the_fix_is_named(tmp_path, capsys):
    assert main(["monitor", "--root", str(tmp_path)]) == EXIT_INVALID
    assert "rlops monitor --interactions PATH --feedback PATH" in capsys.readouterr().err


def test_the_example_history_is_read_by_default():
    """Without --interactions, the newest cycle spec's logs: the project's own example, 376 interactions of base."""
    root = Path(__file__).resolve().parent.parent
    doc = collect(root, Options(*default_sources(root)))
    assert [(v["version"], v["stage"]) for v in doc["versions"]] == [("base", "production")]
    assert doc["versions"][0]["interactions"] + doc["skipped_records"] <= 376 and doc["canaries"] == []


def test_unpaired_bounds_cover_zero_for_one_distribution_and_not_for_a_shift():
    rng = random.Random(3)
    a, b = [rng.random() for _ in range(200)], [rng.random() for _ in range(300)]
    lo, hi = unpaired_bounds(a, b, 2000, 0.95, 0)
    assert lo < 0 < hi
    lo, hi = unpaired_bounds([x + 0.3 for x in a], b, 2000, 0.95, 0)
    assert 0 < lo < 0.3 < hi


def test_the_audit_report_shows_the_committed_figures_and_the_eu_ai_act_map(tmp_path):
    from synth_history import make_history

    from rlops.audit.report import write_report

    repo = make_history(tmp_path / "repo", 1)
    make_logs(repo.path, n=400, canary_worse=True)
    with repo.environment():
        assert run_monitor(repo.path) == EXIT_OK  # the manifest names no canary: the flagged one is history
        out = write_report(repo.path, tmp_path / "report", fmt="md")[0]
        assert "No monitoring figures are committed" in out.read_text()
        repo.git("add", layout.MONITOR)
        repo.git("commit", "-q", "-m", "monitoring figures")
        md = write_report(repo.path, tmp_path / "report", fmt="md")[0].read_text()
    section = md.split("## Post-market monitoring", 1)[1].split("\n## ", 1)[0]
    doc = json.loads((repo.path / layout.MONITOR).read_text())
    for v in doc["versions"]:
        assert f"| {v['version']} | {v['stage']} |" in section and f"| {v['interactions']} |" in section
    assert "Canary v2 against production v1" in section and "SIGNIFICANTLY WORSE on" in section
    act = md.split("## EU AI Act: where the records are", 1)[1]
    for article in ("Art. 9", "Art. 12", "Art. 14", "Art. 72"):
        assert f"| {article}," in act
    assert "monitoring figures committed" in act


def with_canary(tmp_path):
    """A real history: v1 in production, then v2 proposed with promotion mode canary, merged (signed), promoted."""
    from unittest import mock

    import synth_history
    from synth_history import make_history

    from rlops.registry import manifest

    repo = make_history(tmp_path / "repo", 1)
    real = synth_history.registry_entry

    def as_canary(*a, **k):
        entry, out = real(*a, **k)
        return {**entry, "promotion": {"mode": "canary", "fraction": 0.2}}, out

    with mock.patch.object(synth_history, "registry_entry", as_canary):
        branch = repo.propose()
    repo.merge(branch)
    repo.promote()
    assert manifest.load(repo.path, "support-agent").canary == "v2"
    return repo


def test_a_canary_rollback_that_also_moves_production_is_refused(tmp_path):
    from rlops.errors import Refused
    from rlops.promotion.promote import promote
    from rlops.promotion.rollback import end_canary

    repo = with_canary(tmp_path)
    with repo.environment():
        p = end_canary(repo.path, "v2", "worse", push=False)
    path = repo.path / "deployments/support-agent.yaml"
    path.write_text(path.read_text().replace("production: v1", "production: base"))
    repo.git("commit", "-q", "-a", "--amend", "--no-edit")
    repo.git("checkout", "-q", "main")
    repo.merge(p.branch)
    with repo.environment(), pytest.raises(Refused) as refused:
        promote(repo.path)
    assert refused.value.exit_code == 6 and "a canary rollback only takes canary v2 out" in str(refused.value)


def test_rollback_takes_a_worse_canary_out_through_a_signed_merge_and_promote(tmp_path):
    """The canary is started by a real proposal (promotion mode canary), promoted; the monitor flags it and
    --rollback opens the proposal that ends it; its signed merge passes the real `promote()`."""
    from rlops.registry import manifest

    repo = with_canary(tmp_path)
    make_logs(repo.path, n=400, canary_worse=True)
    repo.git("add", "logs")
    repo.git("commit", "-q", "-m", "production logs")
    with repo.environment():
        assert run_monitor(repo.path, "--rollback", "--no-push") == EXIT_CANARY_WORSE
    branch = repo.git("rev-parse", "--abbrev-ref", "HEAD").strip()
    assert branch == "rollback/support-agent-canary-v2"
    shown = repo.git("show", "--name-only", "--format=", branch).split()
    assert sorted(shown) == sorted(["audit/ledger.jsonl", "deployments/support-agent.yaml"])
    repo.git("checkout", "-q", "main")
    repo.merge(branch)
    repo.promote()
    after = manifest.load(repo.path, "support-agent")
    assert (after.production, after.canary) == ("v1", None)
    ledger = [json.loads(line) for line in (repo.path / "audit/ledger.jsonl").read_text().splitlines()]
    assert ledger[-1]["event"] == "canary_ended" and ledger[-1]["data"]["version"] == "v2"
    verify = subprocess.run(["rlops", "audit", "verify"], cwd=repo.path, env=repo.env, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_production_counts_only_on_the_canarys_days(tmp_path):
    """Production interactions from before the canary started are in production's figures, not in the comparison."""
    ix, _ = make_logs(tmp_path, n=600)
    early = [{**r, "interaction_id": f"early-{i}", "timestamp": "2026-10-15T12:00:00Z", "user": f"early-{i}",
              "agent": {"name": "support-agent", "version": "v0", "stage": "production"}} for i, r in enumerate(ix[:50])]
    with open(tmp_path / "logs/interactions.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in early)
    doc = collect(tmp_path, Options(["logs/interactions.jsonl"], ["logs/feedback.jsonl"]))
    (canary,) = doc["canaries"]
    assert canary["against"] == ["v1"]  # v0 served only before the canary started
    production_users = {r["user"] for r in ix if r["agent"]["stage"] == "production"}
    edit = next(m for m in canary["metrics"] if m["metric"] == "edit_rate")
    assert edit["users_production"] == len(production_users)
    assert any(v["version"] == "v0" and v["interactions"] == 50 for v in doc["versions"])
