"""The legitimate trust flows: genesis (a fresh clone of this project verifies), a trust-root change made the proper
way (`rlops trust propose`, a signed and approved merge, `rlops promote`), and the trailer and identity rules that
approvals rest on, cross-checked against `git interpret-trailers --parse`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from synth_history import POLICY, SynthRepo, env_for, init, keygen, make_history

from rlops.audit import trust
from rlops.audit.signatures import Signature

ROOT = Path(__file__).resolve().parent.parent
LEDGER = "audit/ledger.jsonl"


def rlops(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rlops", *args], cwd=cwd, env=env, text=True, capture_output=True)


# genesis ----------------------------------------------------------------------------------------------------------

def test_a_fresh_clone_of_this_project_verifies(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = env_for(home)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], env=env, check=True, capture_output=True)
    p = rlops(clone, env, "audit", "verify")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "production is base" in p.stdout
    p = rlops(clone, env, "audit", "report", "--out", str(tmp_path / "report"), "--format", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads((tmp_path / "report" / f"{POLICY}.json").read_text())
    assert doc["verify"] == {"ok": True, "promotions_verified": 0, "breaks": []}


def test_without_genesis_the_history_does_not_verify_and_genesis_fixes_it(tmp_path):
    repo = init(tmp_path / "repo")
    repo.git("reset", "-q", "--hard", "HEAD~1")  # the set-up commit, before `rlops audit genesis`
    p = rlops(repo.path, repo.env, "audit", "verify")
    assert p.returncode == 9 and "does not start with a genesis event: run `rlops audit genesis`" in p.stdout, p.stdout
    p = rlops(repo.path, repo.env, "audit", "genesis")
    assert p.returncode == 0 and "recorded as ledger line 1" in p.stdout, p.stderr
    assert repo.git("show", "--name-only", "--format=", "HEAD").split() == ["audit/ledger.jsonl"]
    p = rlops(repo.path, repo.env, "audit", "verify")
    assert p.returncode == 0, p.stdout + p.stderr


def test_genesis_is_refused_once_a_promotion_is_recorded(tmp_path):
    repo = make_history(tmp_path / "repo", 1)
    before = repo.git("rev-parse", "HEAD")
    p = rlops(repo.path, repo.env, "audit", "genesis")
    assert p.returncode == 2 and "the history has begun" in p.stderr and "rlops trust propose" in p.stderr, p.stderr
    assert repo.git("rev-parse", "HEAD") == before and "Traceback" not in p.stderr


def test_a_second_genesis_must_be_signed_by_a_signer_the_first_pinned(tmp_path):
    repo = init(tmp_path / "repo")
    rogue = keygen(tmp_path / "rogue", "rogue@rlops.test")
    with (repo.path / "audit/allowed_signers").open("a") as f:
        f.write(f"rogue@rlops.test {rogue.with_suffix('.pub').read_text()}")
    repo.git("config", "user.signingkey", str(rogue))
    p = rlops(repo.path, repo.env, "audit", "genesis")
    assert p.returncode == 0, p.stderr
    again = repo.git("rev-parse", "HEAD").strip()
    p = rlops(repo.path, repo.env, "audit", "verify")
    assert p.returncode == 9 and f"{again[:12]} audit/ledger.jsonl:2: a new genesis must be a commit signed by a " \
                                 f"signer pinned before it" in p.stdout, p.stdout


# a trust-root change, the proper way -------------------------------------------------------------------------------

@pytest.fixture
def repo(tmp_path) -> SynthRepo:
    return make_history(tmp_path / "repo", 1)


def _propose_carol(repo: SynthRepo, tmp_path: Path) -> tuple[Path, str]:
    carol = keygen(tmp_path / "carol", "carol@rlops.test")
    with (repo.path / "audit/allowed_signers").open("a") as f:
        f.write(f"carol@rlops.test {carol.with_suffix('.pub').read_text()}")
    people = repo.path / "audit/people.yaml"
    people.write_text(people.read_text() + "  - name: Carol\n    emails: [carol@rlops.test]\n")
    p = rlops(repo.path, repo.env, "trust", "propose", "--reason", "Carol joins the release rota", "--no-push")
    assert p.returncode == 0, p.stderr
    assert sorted(repo.git("show", "--name-only", "--format=", "HEAD").split()) == [
        "audit/allowed_signers", "audit/ledger.jsonl", "audit/people.yaml"]
    branch = repo.git("rev-parse", "--abbrev-ref", "HEAD").strip()
    assert branch.startswith(f"trust/{POLICY}-") and f"branch {branch}," in p.stdout
    repo.git("checkout", "-q", "main")
    return carol, branch


def test_a_trust_change_made_the_proper_way_is_recorded_and_then_counts(repo, tmp_path):
    carol, branch = _propose_carol(repo, tmp_path)
    repo.merge(branch)  # signed by the release key, pinned before the change; Reviewer approves
    p = rlops(repo.path, repo.env, "promote")
    assert p.returncode == 0, p.stderr
    assert [t for t in repo.git("tag", "--list").split() if "trust" in t] == []  # no GTO tag for a trust change
    repo.merge(repo.propose(), key=carol)  # carol signs from now on
    p = rlops(repo.path, repo.env, "promote")
    assert p.returncode == 0, p.stderr
    p = rlops(repo.path, repo.env, "audit", "verify")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 promotion(s) verified" in p.stdout  # the trust change is verified, not counted as a promotion


def test_a_trust_change_signed_only_by_the_key_it_adds_is_refused(repo, tmp_path):
    carol, branch = _propose_carol(repo, tmp_path)
    repo.merge(branch, key=carol)
    p = rlops(repo.path, repo.env, "promote")
    assert p.returncode == 5 and "not pinned" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_trust_propose_refuses_other_changes(repo):
    (repo.path / "notes.txt").write_text("x\n")
    p = rlops(repo.path, repo.env, "trust", "propose", "--reason", "r", "--no-push")
    assert p.returncode == 2 and "changes that are not trust roots: notes.txt" in p.stderr, p.stderr


# trailers and people ----------------------------------------------------------------------------------------------

MESSAGES = [
    "Merge x\n\nApproved-by: bob\nApproved-by: carol <carol@corp>\n",
    "Merge x\n\nApproved-by: bob said so in the body\nand more prose\n",
    "Merge x\n\nApproved-by: bob\n\nlast paragraph is prose\n",
    "Merge x\n\nsome prose\nSigned-off-by: a <a@b>\nApproved-by: dave\n",
    "Approved-by: subject-line\n",
    "Merge x\n\nbody\n\nApproved-by: eve\n  continued\nReviewed-by: frank\n",
]


@pytest.mark.parametrize("message", MESSAGES)
def test_trailers_are_what_git_interpret_trailers_reads(message, tmp_path):
    git = subprocess.run(["git", "interpret-trailers", "--parse"], input=message, text=True, capture_output=True,
                         check=True, cwd=tmp_path).stdout
    ours = "".join(f"{k}: {v}\n" for k, v in trust.trailer_block(message))
    assert ours == git


PEOPLE = trust.parse_people("""people:
  - name: Bob
    emails: [bob@corp.example]
    logins: [bob]
    keys: ["SHA256:bobkey"]
  - name: Carol
    emails: [carol@corp.example]
""")


def test_one_person_under_any_spelling_counts_once_and_strangers_not_at_all():
    message = "Merge\n\nApproved-by: bob\nApproved-by: Bob\nApproved-by: Bob Smith <BOB@corp.example>\nApproved-by: zed\n"
    got = trust.approvals(message, [], PEOPLE, {})
    assert got.names == ["Bob"] and any("'zed'" in why for why in got.ignored)


def test_the_signer_is_known_by_key_and_never_approves():
    excluded = trust.excluded_people(PEOPLE, "Carol <carol@corp.example>", Signature("G", "SHA256:bobkey", "", ""))
    assert excluded == {"Carol": "proposer", "Bob": "signer"}
    got = trust.approvals("Merge\n\nApproved-by: bob\nApproved-by: carol@corp.example\n", [], PEOPLE, excluded)
    assert got.names == [] and len(got.ignored) == 2


def test_reviews_count_only_when_bound_to_the_merge():
    reviews, why = trust.bind_reviews({"merge_commit_sha": "a" * 40, "approvals": [{"login": "bob", "state": "APPROVED"}]},
                                      "a" * 40, "h" * 40, "f.json")
    assert reviews == [("bob", "APPROVED")] and why is None
    reviews, why = trust.bind_reviews({"approvals": [{"login": "bob", "state": "APPROVED"}]}, "a" * 40, "h" * 40, "f.json")
    assert reviews == [] and "merge_commit_sha" in why
    github = [{"user": {"login": "bob"}, "state": "APPROVED", "commit_id": "h" * 40},
              {"user": {"login": "carol"}, "state": "APPROVED", "commit_id": "o" * 40}]
    reviews, _ = trust.bind_reviews(github, "a" * 40, "h" * 40, "f.json")
    assert reviews == [("bob", "APPROVED")]
    # a later review by the same person replaces the approval; a comment does not
    got = trust.approvals("Merge\n", [("bob", "APPROVED"), ("bob", "CHANGES_REQUESTED")], PEOPLE, {})
    assert got.names == []
    got = trust.approvals("Merge\n", [("bob", "APPROVED"), ("bob", "COMMENTED")], PEOPLE, {})
    assert got.names == ["Bob"]
