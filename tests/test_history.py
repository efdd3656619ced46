"""`rlops history` on a real git history: signed merges promoted by the real `promote()`, a rollback, an open
proposal on its cycle branch, a run that failed its gate in the working tree and a spec only planned."""

from __future__ import annotations

import json
import subprocess

from synth_history import make_history

SPEC = """cycle: {k}
policy: support-agent
parent: production
rationale: A cycle of the history test, with a rationale long enough.
"""


def history(repo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rlops", "history", *args], cwd=repo.path, env=repo.env, text=True, capture_output=True)


def test_history_lists_every_cycle_promoted_or_not_with_verdict_metrics_parent_and_version(tmp_path):
    repo = make_history(tmp_path / "repo", 2, rollbacks_every=2)  # v1, v2 promoted; then production back to v1
    repo.propose()  # cycle 3: proposed on its branch from v1, not merged
    root = repo.path
    # cycle 4 ran here and failed its gate (the models tied on every item); cycle 5 is only a spec
    (root / "specs/cycles/0004-ran-here.yaml").write_text(SPEC.format(k=4))
    (root / "specs/cycles/0005-planned.yaml").write_text(SPEC.format(k=5))
    params = {"plan": {"spec": "specs/cycles/0004-ran-here.yaml"}, "cycle": {"number": 4, "parent_version": "v1"}}
    (root / "params.yaml").write_text(json.dumps(params))
    gate = {"metric": "heldout.rubric", "passed": False, "informative": False, "incumbent": 0.0, "candidate": 0.0,
            "diff": 0.0}
    (root / "artifacts/gate/verdict.json").write_text(json.dumps({"passed": False, "decision": "fail", "cycle": 4,
                                                                  "gates": [gate]}))

    p = history(repo, "--json")
    assert p.returncode == 0, p.stderr
    cycles = {c["cycle"]: c for c in json.loads(p.stdout)}
    assert sorted(cycles) == [1, 2, 3, 4, 5]
    one, two, three, four, five = (cycles[k] for k in range(1, 6))
    assert (one["version"], one["parent"], one["status"], one["verdict"]) == ("v1", "base", "promoted", "pass")
    assert [e["stage"] for e in one["promoted"]] == ["production", "production"]  # promoted, then rolled back to
    assert [e["via"] for e in one["promoted"]] == ["promotion", "rollback"] and one["serving"] == ["production"]
    assert (two["version"], two["parent"], two["status"], two["serving"]) == ("v2", "v1", "promoted", [])
    assert two["metrics"]["heldout.rubric"] == {"incumbent": 0.32, "candidate": 0.34, "diff": 0.02, "passed": True}
    assert (three["version"], three["parent"], three["status"], three["branch"]) == (
        "v3", "v1", "proposed", "cycle/0003-synthetic-3")
    assert (four["status"], four["verdict"], four["version"], four["parent"]) == ("evaluated", "fail", None, "v1")
    assert four["metrics"]["heldout.rubric"]["informative"] is False
    assert (five["status"], five["verdict"], five["parent"], five["spec"]) == (
        "planned", None, "production", "specs/cycles/0005-planned.yaml")

    table = history(repo).stdout.splitlines()
    assert table[0].split()[:6] == ["cycle", "spec", "parent", "version", "status", "verdict"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert list(rows) == ["0001", "0002", "0003", "0004", "0005"]
    assert "promoted (production); serving production" in rows["0001"] and "PASS" in rows["0001"]
    assert "promoted (production); not serving now" in rows["0002"] and "heldout.rubric 0.320->0.340" in rows["0002"]
    assert " proposed " in rows["0003"] and " v3 " in rows["0003"]
    assert "evaluated" in rows["0004"] and "FAIL" in rows["0004"] and "heldout.rubric 0.000->0.000 (tie)" in rows["0004"]
    assert "planned" in rows["0005"]

    # at an earlier commit, only what was there then
    first_promotion = repo.promotions[0]
    earlier = {c["cycle"]: c for c in json.loads(history(repo, "--json", first_promotion).stdout)}
    assert earlier[1]["status"] == "merged"  # its promotion is recorded in the commit after the merge
    bad = history(repo, "no-such-ref")
    assert bad.returncode == 2 and "'no-such-ref' names no commit" in bad.stderr and "Traceback" not in bad.stderr


def test_history_of_a_repository_without_cycles(tmp_path):
    repo = make_history(tmp_path / "repo", 0)
    p = history(repo)
    assert p.returncode == 0 and "no cycles yet" in p.stdout, p.stdout + p.stderr
    assert json.loads(history(repo, "--json").stdout) == []
