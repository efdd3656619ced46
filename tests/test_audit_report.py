"""`rlops audit report` and `rlops audit verify` on a synthetic but real history (tests/synth_history.py): three
promotions and a rollback, each a signed `--no-ff` merge promoted by the real `promote()`. Then each kind of
tampering (an edited, a deleted, a re-chained ledger line; a merge signed by an unpinned key) makes verify exit 9
and name the commit and the line.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from synth_history import SIGNER, SynthRepo, keygen, make_history

from rlops.audit import ledger

LEDGER = "audit/ledger.jsonl"


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> SynthRepo:
    """v1, v2, rollback to v1, v3 (parent v1): four signed merges, each promoted."""
    repo = make_history(tmp_path_factory.mktemp("audit") / "repo", 3, rollbacks_every=2)
    assert repo.versions == ["v1", "v2", "v3"] and repo.rollbacks == [("v2", "v1")]
    return repo


@pytest.fixture
def copy(history, tmp_path) -> SynthRepo:
    """A copy of the history to tamper with (same HOME and keys)."""
    dst = tmp_path / "repo"
    shutil.copytree(history.path, dst, symlinks=True)
    return replace(history, path=dst, promotions=list(history.promotions), versions=list(history.versions),
                   rollbacks=list(history.rollbacks))


def rlops(repo: SynthRepo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rlops", *args], cwd=repo.path, env=repo.env, text=True, capture_output=True)


def model_md5(repo: SynthRepo, version: str) -> str:
    return yaml.safe_load((repo.path / f"registry/support-agent/{version}/version.yaml").read_text())["model"]["md5"]


def fingerprint(key: Path) -> str:
    p = subprocess.run(["ssh-keygen", "-lf", f"{key}.pub"], capture_output=True, text=True, check=True)
    return p.stdout.split()[1]


def report(repo: SynthRepo, out: Path, *args: str) -> dict:
    p = rlops(repo, "audit", "report", "--out", str(out), *args)
    assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in out.iterdir()) == ["support-agent.html", "support-agent.json", "support-agent.md"]
    return json.loads((out / "support-agent.json").read_text())


def rewrite_ledger(repo: SynthRepo, lines: list[str], message: str) -> str:
    (repo.path / LEDGER).write_text("".join(line + "\n" for line in lines))
    return repo.commit_all(message)


def test_verify_passes_and_the_report_has_one_section_per_version(history, tmp_path):
    p = rlops(history, "audit", "verify")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "4 promotion(s) verified" in p.stdout and "production is v3" in p.stdout

    doc = report(history, tmp_path / "out", "--deployed", model_md5(history, "v3"))
    events = [json.loads(line) for line in (history.path / LEDGER).read_text().splitlines()]
    assert doc["verify"] == {"ok": True, "promotions_verified": 4, "breaks": []}
    assert [v["version"] for v in doc["versions"]] == ["v1", "v2", "v3"]
    assert [v["status"] for v in doc["versions"]] == ["superseded", "rolled back", "in production"]
    assert [v["parent"] for v in doc["versions"]] == ["base", "v1", "v1"]
    for v, merge in zip(doc["versions"], [history.promotions[0], history.promotions[1], history.promotions[3]]):
        entry = yaml.safe_load((history.path / f"registry/support-agent/{v['version']}/version.yaml").read_text())
        assert v["merge"] == merge
        assert v["rationale"] == entry["rationale"] and v["rationale"].startswith(f"Cycle {entry['cycle']}:")
        assert v["data"]["pairs_md5"] == entry["data"]["pairs"] and v["data"]["pairs"] == 150 + entry["cycle"]
        assert set(v["data"]["signals_used"]) == {"edit", "pairwise", "rating"}
        assert v["training"]["method"] == "dpo" and v["training"]["hyperparameters"]["beta"] == 0.1
        assert v["training"]["hyperparameters"]["max_steps"] == entry["training"]["max_steps"]
        assert v["model"]["md5"] == entry["model"]["md5"]
        heldout = next(g for g in v["evaluation"] if g["metric"] == "heldout.rubric")
        assert heldout["ci_low"] < heldout["diff"] < heldout["ci_high"]
        assert (heldout["incumbent"], heldout["candidate"]) == (entry["evaluation"]["heldout.rubric"]["incumbent"],
                                                                entry["evaluation"]["heldout.rubric"]["candidate"])
        assert [g["metric"] for g in v["redteam"]] == ["redteam.refusal"] and v["verdict"] == "pass"
        assert v["approval"]["approvers"] == ["Reviewer"] and v["approval"]["signer"] == SIGNER
        assert v["approval"]["fingerprint"] == fingerprint(history.key) and v["approval"]["checks"] == []
        assert all(v["dates"][k] for k in ("proposed", "merged", "promoted"))
        promoted = next(e for e in events if e["event"] == "promoted" and e["data"]["merge"] == merge)
        assert v["dates"]["promoted"] == promoted["ts"]
    assert [(b["from"], b["to"], b["merge"]) for b in doc["rollbacks"]] == [("v2", "v1", history.promotions[2])]
    assert [(t["version"], t["via"]) for t in doc["timeline"]] == [("v1", "promotion"), ("v2", "promotion"),
                                                                 ("v1", "rollback"), ("v3", "promotion")]
    assert doc["summary"]["production"] == "v3" and doc["summary"]["drift"] == "no"

    md = (tmp_path / "out/support-agent.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("## support-agent@")] == [
        "## support-agent@v1", "## support-agent@v2", "## support-agent@v3"]
    for heading in ("### Data", "### Training", "### Evaluation", "### Red team", "### Gate verdict: PASS",
                    "### Approval and signature"):
        assert md.count(heading) == 3, heading
    assert "production v2 -> v1: synthetic rollback after cycle 2" in md
    assert "Drift | no: the deployed model is support-agent@v3" in md
    html = (tmp_path / "out/support-agent.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<h2>support-agent@v") == 3
    assert "<script" not in html and "src=" not in html and "href=" not in html  # self-contained

    # the same history gives the same report, byte for byte
    again = tmp_path / "again"
    report(history, again, "--deployed", model_md5(history, "v3"))
    for name in ("support-agent.md", "support-agent.json", "support-agent.html"):
        assert (again / name).read_bytes() == (tmp_path / "out" / name).read_bytes()


def test_drift_is_detected_when_another_model_is_deployed(history, tmp_path):
    doc = report(history, tmp_path / "wrong", "--deployed", model_md5(history, "v2"), "--format", "all")
    assert doc["summary"]["drift"] == "yes"
    assert model_md5(history, "v2").removesuffix(".dir") in doc["summary"]["drift_reason"]
    assert "DRIFT: the deployed model" in (tmp_path / "wrong/support-agent.md").read_text()
    assert report(history, tmp_path / "none")["summary"]["drift"] == "unknown"

    p = rlops(history, "audit", "report", "--out", str(tmp_path / "bad"), "--deployed", "latest")
    assert p.returncode == 2 and "--deployed: 'latest' is not an md5 digest" in p.stderr, p.stderr
    p = rlops(history, "audit", "report", "--out", str(tmp_path / "bad"), "no-such-ref")
    assert p.returncode == 2 and "no-such-ref is not a commit" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "bad").exists()
    p = rlops(history, "audit", "report", "--out", str(tmp_path / "md"), "--format", "md")
    assert p.returncode == 0 and [f.name for f in (tmp_path / "md").iterdir()] == ["support-agent.md"]


def test_html_and_markdown_escape_what_people_wrote(copy, tmp_path):
    evil = 'Tone <script>alert("x")</script> & <b>bold</b> | a table cell\n# not a heading'
    copy.cycle_once(rationale=evil)
    doc = report(copy, tmp_path / "out")
    assert doc["versions"][-1]["rationale"] == evil  # JSON keeps it as written
    html = (tmp_path / "out/support-agent.html").read_text()
    assert "<script" not in html and "<b>bold" not in html
    assert "Tone &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    md = (tmp_path / "out/support-agent.md").read_text()
    assert not re.search(r"(?<!\\)<", md) and "\n# not a heading" not in md  # every < is escaped as \<
    assert r"Tone \<script>alert(" in md and r"\| a table cell # not a heading" in md


def test_an_edited_past_ledger_line_is_named(copy, tmp_path):
    lines = (copy.path / LEDGER).read_text().splitlines()
    event = json.loads(lines[2])  # v1's `evaluated` event (line 1 is the genesis): make the candidate look better than it was
    event["data"]["metrics"]["heldout.rubric"]["candidate"] = 0.99
    lines[2] = ledger.canonical(event)
    head = rewrite_ledger(copy, lines, "fix a typo")
    p = rlops(copy, "audit", "verify")
    assert p.returncode == 9, p.stdout + p.stderr
    assert f"{head[:12]} {LEDGER}:4: prev: does not match the line before" in p.stdout
    assert "rlops audit verify: 1 break(s)" in p.stderr, p.stdout + p.stderr
    doc = report(copy, tmp_path / "out")  # the report still renders, and says why the history does not verify
    assert doc["verify"]["ok"] is False and doc["verify"]["breaks"][0]["where"] == f"{LEDGER}:4"
    assert f"- {head[:12]} {LEDGER}:4: prev: does not match" in (tmp_path / "out/support-agent.md").read_text()


def test_a_deleted_ledger_line_is_named(copy):
    lines = (copy.path / LEDGER).read_text().splitlines()
    head = rewrite_ledger(copy, lines[:6] + lines[7:], "drop a line")  # v2's `proposed` event
    p = rlops(copy, "audit", "verify")
    assert p.returncode == 9, p.stdout + p.stderr
    assert f"{head[:12]} {LEDGER}:7: seq: is 8, expected 7" in p.stdout
    assert f"{head[:12]} {LEDGER}: shrinks {LEDGER} from" in p.stdout


def test_a_rechained_ledger_is_caught_by_the_anchors(copy):
    """An editor who rewrites a line *and* recomputes every later `prev` keeps the chain whole; the proposal commit's
    `Rlops-Ledger:` trailer and the promotion tags still hold the old hashes."""
    entries, _ = ledger.read(copy.path)
    events = [dict(e.event) for e in entries]
    events[6]["data"] = {**events[6]["data"], "rationale": "a better-sounding reason"}  # v2's `proposed`
    prev, lines = ledger.GENESIS, []
    for ev in events:
        ev["prev"] = prev
        lines.append(ledger.canonical(ev))
        prev = ledger.line_hash(lines[-1])
    rewrite_ledger(copy, lines, "reword a rationale")
    assert ledger.read(copy.path)[1] == []  # the chain alone looks intact
    p = rlops(copy, "audit", "verify")
    assert p.returncode == 9, p.stdout + p.stderr
    proposal = copy.git("rev-parse", f"{copy.promotions[1]}^2").strip()
    assert f"{proposal[:12]} {LEDGER}:9: differs from the line the proposal commit anchored" in p.stdout


def test_a_merge_signed_by_an_unpinned_key_is_named(copy, tmp_path):
    rogue = keygen(tmp_path / "rogue", "mallory@rlops.test")
    branch = copy.propose()
    merge = copy.merge(branch, key=rogue)
    copy.promote(trust=rogue)  # a CI job that ran with a doctored allowed_signers recorded it
    p = rlops(copy, "audit", "verify")
    assert p.returncode == 9, p.stdout + p.stderr
    named = [line for line in p.stdout.splitlines() if line.startswith(merge[:12])]
    assert len(named) == 1 and fingerprint(rogue) in named[0] and "not pinned" in named[0], p.stdout
    assert all(m[:12] not in p.stdout for m in copy.promotions[:-1])  # the earlier merges still verify


def test_the_report_imports_nothing_heavy(history, tmp_path):
    probe = (f"import sys; from rlops.cli import main; rc = main(['audit', 'report', '--out', {str(tmp_path)!r}]); "
             "print(rc, sorted(m for m in ('torch', 'transformers', 'trl', 'lm_eval', 'dvc') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", probe], cwd=history.path, env=history.env, text=True, capture_output=True)
    assert p.stdout.strip().splitlines()[-1] == "0 []", p.stdout + p.stderr


def test_a_merge_not_yet_promoted_is_reported_as_such(copy, tmp_path):
    merge = copy.merge(copy.propose())  # CI has not run `rlops promote` yet
    p = rlops(copy, "audit", "verify")
    assert p.returncode == 9 and f"{merge[:12]} deployments/support-agent.yaml: the deployment changed here" in p.stdout
    doc = report(copy, tmp_path / "out")
    v4 = doc["versions"][-1]
    assert (v4["version"], v4["status"], v4["approval"]) == ("v4", "merged, not promoted", None)
    assert v4["dates"]["proposed"] and v4["dates"]["promoted"] is None
    assert doc["summary"]["production"] == "v3" and not doc["verify"]["ok"]
    md = (tmp_path / "out/support-agent.md").read_text()
    assert "Status: merged, not promoted." in md and "No promotion of this merge is recorded" in md
