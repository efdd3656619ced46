"""Promotion end to end, all local and real: SSH signing keys from ssh-keygen, a bare origin, `dvc repro` of real
cycles with the tiny model, `rlops propose`, signed `--no-ff` merges, `rlops promote`, tags, `rlops audit verify`,
each refusal, a stale second proposal, and a rollback. Only the forge is absent: no GitHub API here, so approvals
come from `Approved-by:` trailers and pull requests are merged with `git merge`, as GitHub's merge button does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import run

SPEC1 = "specs/cycles/0001-damaged-orders.yaml"
TINY = ["train.max_steps=4", "evaluate.limit=4", "evaluate.max_new_tokens=8"]
# a team's own checkpoint, tracked by DVC: here the tiny random model's weights, saved as a local checkpoint. Its
# answers score 0 before and after training, so every gate ties; the cycle's spec says it accepts that.
OWN = """name: own-checkpoint
source: local
path: models/own
tokenizer: {source: local, path: models/own}
"""


def keygen(path: Path, comment: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


def git(repo: Path, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["git", *args], repo, env, check=check)


def rlops(repo: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return run(["rlops", *args], repo, env, check=False)


def merge(repo: Path, env: dict, branch: str, *, key: Path | None, approvers=("bob",)) -> None:
    """`git merge --no-ff` as a forge's merge button does it: signed with `key`, or unsigned when None."""
    message = f"Merge {branch}\n\n" + "".join(f"Approved-by: {a}\n" for a in approvers)
    signing = ["-c", f"user.signingkey={key}"] if key else []
    git(repo, env, *signing, "merge", "--no-ff", "-S" if key else "--no-gpg-sign", "-m", message, branch)


def refused(repo: Path, env: dict, code: int, text: str) -> None:
    p = rlops(repo, env, "promote")
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert text in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    git(repo, env, "reset", "-q", "--hard", "HEAD~1")  # undo the merge; nothing was recorded


def ledger_events(repo: Path) -> list[dict]:
    return [json.loads(line) for line in (repo / "audit/ledger.jsonl").read_text().splitlines()]


def manifest(repo: Path) -> dict:
    return yaml.safe_load((repo / "deployments/support-agent.yaml").read_text())


def new_cycle(repo: Path, number: int, slug: str, *, margin: str = "0.05") -> str:
    text = (repo / SPEC1).read_text() if (repo / SPEC1).exists() else ""
    spec = f"specs/cycles/{number:04d}-{slug}.yaml"
    text = text.replace("cycle: 1", f"cycle: {number}").replace("parent: base", "parent: production")
    (repo / spec).write_text(text.replace("margin: 0.05", f"margin: {margin}"))
    return spec


@pytest.mark.slow
def test_propose_merge_promote_refusals_stale_and_rollback(project, tmp_path):
    repo, env = project
    alice = keygen(tmp_path / "alice", "alice@rlops.test")
    mallory = keygen(tmp_path / "mallory", "mallory@rlops.test")
    signers = repo / "audit/allowed_signers"
    signers.write_text(signers.read_text() + f"alice@rlops.test {alice.with_suffix('.pub').read_text()}")
    (repo / "audit/people.yaml").write_text(
        "people:\n  - name: alice\n    emails: [alice@rlops.test, test@rlops.local]\n"
        "  - name: bob\n    emails: [bob@rlops.test]\n    logins: [bob]\n")
    for k, v in {"gpg.format": "ssh", "user.signingkey": str(alice), "user.name": "alice",
                 "gpg.ssh.allowedSignersFile": str(repo / "audit/allowed_signers")}.items():
        git(repo, env, "config", k, v)
    # before the first promotion, a new genesis pins the first signer and people (signed by alice)
    p = rlops(repo, env, "audit", "genesis")
    assert p.returncode == 0 and "ledger line 2" in p.stdout, p.stderr
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path, env)
    git(repo, env, "remote", "add", "origin", str(origin))
    git(repo, env, "push", "-q", "origin", "main")

    # cycle 1 with the tiny test model: candidate and incumbent tie on every item (both score 0), so every gate is
    # uninformative and fails, and a test model is never proposed anyway
    run(["rlops", "plan", SPEC1, "model=tiny", *TINY], repo, env)
    run(["dvc", "repro"], repo, env)
    verdict = json.loads((repo / "artifacts/gate/verdict.json").read_text())
    assert verdict["decision"] == "fail" and verdict["uninformative"] == [g["metric"] for g in verdict["gates"]]
    assert "Uninformative evaluation" in (repo / "artifacts/gate/report.md").read_text()
    p = rlops(repo, env, "propose")
    assert p.returncode == 2 and "a test model is never proposed" in p.stderr, p.stderr
    assert "uninformative: candidate and incumbent tied on every item" in p.stderr, p.stderr
    assert git(repo, env, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip() == "main"

    # the same weights as the team's own checkpoint (DVC-tracked), and a spec that explicitly accepts gates that tie
    shutil.copytree(repo / "artifacts/base/model", repo / "models/own")
    run(["dvc", "add", "-q", "models/own"], repo, env)
    (repo / "pipelines/conf/model/own.yaml").write_text(OWN)
    spec = repo / SPEC1
    good = "\n".join(line.replace("}", ", allow_uninformative: true}", 1) if line.startswith("  - {metric:") else line
                     for line in spec.read_text().splitlines()) + "\n"  # a gate line may end with a comment
    spec.write_text(good)
    git(repo, env, "add", "models/own.dvc", "models/.gitignore", "pipelines/conf/model/own.yaml", SPEC1)
    git(repo, env, "commit", "-q", "-m", "Our own checkpoint; cycle 1 accepts gates that tie")

    # a failed gate is never proposed
    spec.write_text(good.replace("rule: non_inferior, margin: 0.05, allow_uninformative: true",
                                 "rule: at_least, value: 0.5"))
    run(["rlops", "plan", SPEC1, "model=own", *TINY], repo, env)
    run(["dvc", "repro"], repo, env)
    p = rlops(repo, env, "propose")
    assert p.returncode == 4 and "the gate did not pass (heldout.rubric)" in p.stderr, p.stderr
    spec.write_text(good)
    run(["rlops", "plan", SPEC1, "model=own", *TINY], repo, env)
    run(["dvc", "repro"], repo, env)
    verdict = json.loads((repo / "artifacts/gate/verdict.json").read_text())
    assert verdict["decision"] == "pass", verdict
    report = (repo / "artifacts/gate/report.md").read_text()
    assert report.count("⚠️ uninformative (allowed)") == sum(not g["informative"] for g in verdict["gates"])

    # what DVC itself leaves behind is not an unrelated change
    run(["dvc", "plots", "show"], repo, env)
    assert (repo / "dvc_plots").is_dir()

    # unrelated changes and stale outputs are refused too
    (repo / "notes.txt").write_text("wip\n")
    p = rlops(repo, env, "propose")
    assert p.returncode == 2 and "unrelated to the cycle: notes.txt;" in p.stderr, p.stderr
    (repo / "notes.txt").unlink()
    spec.write_text(good.replace("margin: 0.05", "margin: 0.07"))
    run(["rlops", "plan", SPEC1, "model=own", *TINY], repo, env)  # planned, not reproduced: the gate is stale
    p = rlops(repo, env, "propose")
    assert p.returncode == 3 and "`dvc status` shows stale outputs" in p.stderr and "gate" in p.stderr, p.stderr
    spec.write_text(good)
    run(["rlops", "plan", SPEC1, "model=own", *TINY], repo, env)

    p = rlops(repo, env, "propose")
    assert p.returncode == 0, p.stderr
    assert "cycle/0001-damaged-orders" in p.stdout and "git push -u origin cycle/0001-damaged-orders" in p.stdout
    assert "you are now on branch cycle/0001-damaged-orders; to go back: git checkout main" in p.stdout, p.stdout
    assert (repo / "dvc_plots").is_dir()  # left in place: `rlops rollback` (below) knows it is DVC's own
    shown = git(repo, env, "show", "--name-only", "--format=%B", "cycle/0001-damaged-orders").stdout
    for path in ("registry/support-agent/v1/version.yaml", "registry/support-agent/v1/model.dvc",
                 "deployments/support-agent.yaml", "audit/ledger.jsonl", "dvc.lock", "artifacts/gate/verdict.json"):
        assert path in shown, shown
    assert "Rlops-Ledger: seq=5 sha256:" in shown
    assert [e["event"] for e in ledger_events(repo)] == ["genesis", "genesis", "proposed", "evaluated", "gate_decided"]
    git(repo, env, "push", "-q", "origin", "cycle/0001-damaged-orders")
    git(repo, env, "checkout", "-q", "main")

    # each refusal; the merge is undone after each
    merge(repo, env, "cycle/0001-damaged-orders", key=None)
    refused(repo, env, 5, "no signature")
    merge(repo, env, "cycle/0001-damaged-orders", key=mallory)
    refused(repo, env, 5, "not pinned")
    # a pull request that pins its own key and is signed with it: the signers on the merge's first parent count
    git(repo, env, "checkout", "-q", "-b", "self-pinned", "cycle/0001-damaged-orders")
    signers.write_text(signers.read_text() + f"mallory@rlops.test {mallory.with_suffix('.pub').read_text()}")
    git(repo, env, "commit", "-q", "-am", "Pin mallory")
    git(repo, env, "checkout", "-q", "main")
    merge(repo, env, "self-pinned", key=mallory)
    refused(repo, env, 5, "a key that is unknown or untrusted here: not pinned")
    merge(repo, env, "cycle/0001-damaged-orders", key=alice, approvers=())
    refused(repo, env, 8, "0 approval(s) count")
    merge(repo, env, "cycle/0001-damaged-orders", key=alice, approvers=("alice",))  # the proposer and signer
    refused(repo, env, 8, "is alice, the proposer: never an approver")
    git(repo, env, "checkout", "-q", "-b", "tampered", "cycle/0001-damaged-orders")
    results = repo / "artifacts/evaluate/candidate/results.json"
    results.write_text(results.read_text().replace("0.0", "0.9", 1))
    git(repo, env, "commit", "-q", "-am", "Improve the numbers")
    git(repo, env, "checkout", "-q", "main")
    merge(repo, env, "tampered", key=alice)
    refused(repo, env, 6, "artifacts/evaluate/candidate/results.json changed after the gate")

    # the good merge: signed by a pinned key, approved; promote records it and tags it
    merge(repo, env, "cycle/0001-damaged-orders", key=alice)
    p = rlops(repo, env, "promote")
    assert p.returncode == 0, p.stderr
    assert "v1 -> production" in p.stdout
    tags = git(repo, env, "tag", "--list").stdout.split()
    assert tags == ["support-agent#prod#1", "support-agent@v1.0.0"], tags
    for tag in tags:
        git(repo, env, "verify-tag", tag)  # signed with alice's key
    assert [e["event"] for e in ledger_events(repo)][-2:] == ["approved", "promoted"]
    assert manifest(repo)["production"] == "v1"
    p = rlops(repo, env, "audit", "verify")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 promotion(s) verified" in p.stdout
    gto = run(["gto", "show", "support-agent"], repo, env)
    assert "v1.0.0" in gto.stdout and "prod" in gto.stdout, gto.stdout
    git(repo, env, "push", "-q", "origin", "main", "--tags")

    # cycles 2 and 3 both start from production (v1): the weights come back from the DVC cache
    run(["dvc", "checkout", "registry/support-agent/v1/model.dvc"], repo, env)
    spec2 = new_cycle(repo, 2, "tone")
    run(["rlops", "plan", spec2, *TINY], repo, env)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["model"]["path"] == "registry/support-agent/v1/model" and params["cycle"]["parent_version"] == "v1"
    run(["dvc", "repro"], repo, env)
    assert rlops(repo, env, "propose").returncode == 0
    git(repo, env, "checkout", "-q", "main")
    spec3 = new_cycle(repo, 3, "tone-again", margin="0.06")
    run(["rlops", "plan", spec3, *TINY], repo, env)
    run(["dvc", "repro"], repo, env)  # DVC's run cache restores what cycle 2 computed; the gate re-runs
    assert rlops(repo, env, "propose").returncode == 0
    git(repo, env, "checkout", "-q", "main")
    # two merges land before CI promotes: cycle 2 (v2), then a rollback to v1 proposed on top of it; a rollback
    # is a proposal too, and `rlops promote` records both, oldest first
    merge(repo, env, "cycle/0002-tone", key=alice)
    p = rlops(repo, env, "rollback", "--to", "v1", "--reason", "refund answers got worse")
    assert p.returncode == 0, p.stderr
    git(repo, env, "checkout", "-q", "main")
    merge(repo, env, "rollback/support-agent-v2-to-v1", key=alice)
    p = rlops(repo, env, "promote")
    assert p.returncode == 0, p.stderr
    assert "v2 -> production" in p.stdout and "v1 -> production" in p.stdout, p.stdout
    assert manifest(repo)["production"] == "v1"
    # the rollback's own line was appended by its pull request, before promote recorded both merges
    events = [(e["event"], e["data"].get("version", e["data"].get("to"))) for e in ledger_events(repo)]
    assert [e for e in events if e[0] in ("promoted", "rolled_back")] == [
        ("promoted", "v1"), ("rolled_back", "v1"), ("promoted", "v2"), ("promoted", "v1")], events
    prod3 = git(repo, env, "rev-parse", "support-agent#prod#3^{commit}").stdout
    assert prod3 == git(repo, env, "rev-parse", "support-agent@v1.0.0^{commit}").stdout  # GTO: v1 is in prod again
    gto = run(["gto", "show", "support-agent"], repo, env).stdout
    rows = {v: next(l for l in gto.splitlines() if v in l) for v in ("v1.0.0", "v2.0.0")}
    assert "prod" in rows["v1.0.0"] and "prod" not in rows["v2.0.0"], gto
    p = rlops(repo, env, "audit", "verify")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "production is v1" in p.stdout and "3 promotion(s) verified" in p.stdout, p.stdout
    v1_md5 = yaml.safe_load((repo / "registry/support-agent/v1/model.dvc").read_text())["outs"][0]["md5"]
    assert rlops(repo, env, "audit", "report", "--deployed", v1_md5).returncode == 0
    report = json.loads((repo / "audit/report/support-agent.json").read_text())
    assert report["summary"]["production"] == "v1" and report["summary"]["drift"] == "no"
    assert [(b["from"], b["to"]) for b in report["rollbacks"]] == [("v2", "v1")]
    assert "refund answers got worse" in (repo / "audit/report/support-agent.md").read_text()

    # the other proposal from v1 conflicts; its author takes their side and appends their ledger lines after ours;
    # v2 is registered already, so it is stale
    before = (repo / "audit/ledger.jsonl").read_text()
    p = git(repo, env, "-c", f"user.signingkey={alice}", "merge", "--no-ff", "-S", "--no-commit",
            "cycle/0003-tone-again", check=False)
    assert p.returncode != 0  # conflicts, as expected
    git(repo, env, "checkout", "--theirs", "--", ".")
    theirs = git(repo, env, "show", "cycle/0003-tone-again:audit/ledger.jsonl").stdout
    (repo / "audit/ledger.jsonl").write_text(before + "".join(l + "\n" for l in theirs.splitlines()
                                                               if l + "\n" not in before))
    git(repo, env, "add", "-A")
    git(repo, env, "-c", f"user.signingkey={alice}", "commit", "-q", "-S", "-m",
        "Merge cycle/0003-tone-again\n\nApproved-by: bob")
    refused(repo, env, 7, "stale")
    assert rlops(repo, env, "audit", "verify").returncode == 0

    # any edit or deletion of a past ledger line breaks verification, naming the line
    ledger = repo / "audit/ledger.jsonl"
    good_ledger = ledger.read_text()
    lines = good_ledger.splitlines()
    second = json.loads(lines[1])
    second["actor"] = "someone else"
    ledger.write_text("\n".join([lines[0], json.dumps(second, sort_keys=True, separators=(",", ":")), *lines[2:]]) + "\n")
    git(repo, env, "commit", "-q", "-am", "Edit history")
    p = rlops(repo, env, "audit", "verify")
    assert p.returncode == 9 and "audit/ledger.jsonl:3" in p.stdout, p.stdout + p.stderr
    git(repo, env, "reset", "-q", "--hard", "HEAD~1")
    ledger.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    git(repo, env, "commit", "-q", "-am", "Delete a line")
    p = rlops(repo, env, "audit", "verify")
    assert p.returncode == 9 and "audit/ledger.jsonl:2" in p.stdout, p.stdout + p.stderr
    git(repo, env, "reset", "-q", "--hard", "HEAD~1")
    assert rlops(repo, env, "audit", "verify").returncode == 0
    shutil.rmtree(repo / "artifacts", ignore_errors=True)
