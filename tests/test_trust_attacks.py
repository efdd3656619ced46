"""Issue 9's insider attacks, each on a real history (tests/synth_history.py: real git, ssh-keygen keys, signed
`--no-ff` merges, the real promote). For each: `rlops promote` refuses with its documented exit code and reason and
records nothing; and where a doctored CI job recorded it anyway (`promote(force=True)`), or it never needed
promote (a direct push, a moved tag), `rlops audit verify` exits 9 naming the commit and the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from synth_history import POLICY, REVIEWER, SIGNER, SynthRepo, keygen, make_history

LEDGER = "audit/ledger.jsonl"
MANIFEST = f"deployments/{POLICY}.yaml"


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> SynthRepo:
    """v1, then v2 (parent v1): two signed merges, each promoted."""
    return make_history(tmp_path_factory.mktemp("trust") / "repo", 2)


@pytest.fixture
def repo(history, tmp_path) -> SynthRepo:
    dst = tmp_path / "repo"
    shutil.copytree(history.path, dst, symlinks=True)
    return replace(history, path=dst, promotions=list(history.promotions), versions=list(history.versions),
                   rollbacks=list(history.rollbacks))


def rlops(repo: SynthRepo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rlops", *args], cwd=repo.path, env=repo.env, text=True, capture_output=True)


def state(repo: SynthRepo) -> tuple[str, str, str]:
    return repo.git("rev-parse", "HEAD"), repo.git("tag", "--list"), (repo.path / LEDGER).read_text()


def refused(repo: SynthRepo, code: int, *texts: str, args: tuple[str, ...] = ()) -> str:
    """`rlops promote` exits `code` naming every text, and records nothing."""
    before = state(repo)
    p = rlops(repo, "promote", *args)
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    for text in texts:
        assert text in p.stderr, (text, p.stderr)
    assert "Traceback" not in p.stderr
    assert state(repo) == before  # nothing was recorded: no ledger commit, no tag
    return p.stderr


def breaks(repo: SynthRepo, *texts: tuple[str, str]) -> str:
    """`rlops audit verify` exits 9 and names each (commit, reason) on one line."""
    p = rlops(repo, "audit", "verify")
    assert p.returncode == 9, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stdout.splitlines()
    for commit, text in texts:
        assert any(line.startswith(commit[:12]) and text in line for line in lines), (commit[:12], text, p.stdout)
    return p.stdout


def verifies(repo: SynthRepo) -> None:
    p = rlops(repo, "audit", "verify")
    assert p.returncode == 0, p.stdout + p.stderr


def add_signer(root: Path, key: Path, principal: str) -> None:
    with (root / "audit/allowed_signers").open("a") as f:
        f.write(f"{principal} {key.with_suffix('.pub').read_text()}")


def fingerprint(key: Path) -> str:
    return subprocess.run(["ssh-keygen", "-lf", f"{key}.pub"], capture_output=True, text=True, check=True).stdout.split()[1]


# 1. write-once registry -------------------------------------------------------------------------------------------

def test_the_baseline_history_verifies(history):
    verifies(history)


def test_a_rewritten_registered_model_digest_is_flagged_and_drift_uses_the_recorded_digest(repo, tmp_path):
    swapped = "f" * 32 + ".dir"
    for name in ("model.dvc", "version.yaml"):
        path = repo.path / f"registry/{POLICY}/v2/{name}"
        data = yaml.safe_load(path.read_text())
        if name == "model.dvc":
            data["outs"][0]["md5"] = swapped
        else:
            data["model"]["md5"] = swapped
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    push = repo.commit_all("registry: correct v2's digest")
    breaks(repo, (push, f"changes the files of {POLICY}@v2, registered earlier: a registered version is write-once"))
    p = rlops(repo, "audit", "report", "--out", str(tmp_path / "out"), "--deployed", swapped)
    assert p.returncode == 0, p.stdout + p.stderr  # a report is written whatever the history holds
    doc = json.loads((tmp_path / "out" / f"{POLICY}.json").read_text())
    assert doc["summary"]["drift"] == "yes", doc["summary"]  # judged against what the promotion recorded


def test_a_proposal_reusing_a_version_name_is_refused_and_its_merge_flagged(repo):
    merge = repo.merge(repo.propose(version="v1"))
    refused(repo, 7, f"{POLICY}@v1 was already registered by an earlier promotion")
    breaks(repo, (merge, f"changes the files of {POLICY}@v1, registered earlier"),
           (merge, "the deployment changed here, but no promotion of this commit is recorded"))


# 2. protected trust roots -----------------------------------------------------------------------------------------

def test_a_promotion_that_also_pins_a_key_is_refused_and_the_smuggled_key_does_not_count(repo, tmp_path):
    mallory = keygen(tmp_path / "mallory", "mallory@rlops.test")
    smuggle = repo.merge(repo.propose(extra=lambda root: add_signer(root, mallory, "mallory@rlops.test")))
    refused(repo, 5, "also changes audit/allowed_signers, a trust root", "rlops trust propose")
    repo.promote(force=True)  # a doctored CI job records it anyway
    repo.merge(repo.propose(), key=mallory)
    repo.promote(force=True)
    breaks(repo, (smuggle, "also changes audit/allowed_signers, a trust root"),
           (smuggle, "changes a trust root outside a recorded trust change"))


def test_a_pull_request_pinning_its_own_key_and_signing_with_it_is_refused(repo, tmp_path):
    """The signers pinned on the merge's *first parent* count: reading them from the merge makes this test fail."""
    mallory = keygen(tmp_path / "mallory", "mallory@rlops.test")
    merge = repo.merge(repo.propose(extra=lambda root: add_signer(root, mallory, "mallory@rlops.test")), key=mallory)
    refused(repo, 5, f"is signed by unknown signer ({fingerprint(mallory)}), a key that is unknown or untrusted here: not pinned")
    repo.promote(force=True)
    breaks(repo, (merge, f"({fingerprint(mallory)}), a key that is unknown or untrusted here: not pinned"))


def test_a_direct_push_that_pins_a_key_and_drops_approvals_is_refused_and_flagged(repo, tmp_path):
    mallory = keygen(tmp_path / "mallory", "mallory@rlops.test")
    add_signer(repo.path, mallory, "mallory@rlops.test")
    policy = repo.path / "specs/policy.yaml"
    policy.write_text(policy.read_text().replace("required: 1", "required: 0"))
    push = repo.commit_all("tidy up")
    merge = repo.merge(repo.propose(), key=mallory, approvers=())
    refused(repo, 5, "differ from the ones the ledger recorded", "audit/allowed_signers",
            "specs/policy.yaml#policy+approvals")
    repo.promote(force=True)
    out = breaks(repo, (push, "changes a trust root outside a recorded trust change"))
    assert any(line.startswith(f"{push[:12]} audit/allowed_signers, specs/policy.yaml#policy+approvals:")
               for line in out.splitlines()), out
    assert f"{merge[:12]} audit/ledger.jsonl" in out  # its recorded approver is not in the merge


# 3. approvals bound to one merge and one person -------------------------------------------------------------------

@pytest.mark.parametrize("body", [f"Approved-by: {REVIEWER} said it looks fine\n\nthanks all\n",
                                  f"We talked it over, and\nApproved-by: {REVIEWER}\n"])  # prose in its paragraph
def test_an_approval_in_the_message_body_is_not_a_trailer(repo, body):
    branch = repo.propose()
    repo.merge(branch, message=f"Merge {branch}\n\n{body}")
    refused(repo, 8, "0 approval(s) count (none)")


def test_one_person_under_three_spellings_is_one_approver(repo):
    repo.merge(repo.propose(), approvers=("reviewer", "Reviewer", REVIEWER))
    repo.promote()
    approved = [json.loads(line) for line in (repo.path / LEDGER).read_text().splitlines()
                if json.loads(line)["event"] == "approved"][-1]
    assert approved["data"]["approvers"] == ["Reviewer"]
    verifies(repo)


def test_the_proposer_and_signer_never_approve_their_own_change(repo):
    repo.merge(repo.propose(), approvers=(f"Release Manager <{SIGNER}>",))
    refused(repo, 8, "0 approval(s) count", "is Release Manager, the proposer: never an approver")


def test_the_forges_reviews_count_only_for_their_own_merge(repo, tmp_path):
    a = repo.merge(repo.propose(), approvers=())
    b = repo.merge(repo.propose(), approvers=())
    reviews = tmp_path / "reviews.json"
    reviews.write_text(json.dumps({"merge_commit_sha": b, "approvals": [{"login": "reviewer", "state": "APPROVED"}]}))
    refused(repo, 8, "0 approval(s) count", args=("--approvals", str(reviews)))  # not applied to A
    refused(repo, 8, f"is about merge {b[:12]}, not {a[:12]}", args=(a, "--approvals", str(reviews)))
    github = tmp_path / "github.json"  # GitHub's review list: bound by the head commit each review saw
    head_b = repo.git("rev-parse", f"{b}^2").strip()
    github.write_text(json.dumps([{"user": {"login": "reviewer"}, "state": "APPROVED", "commit_id": head_b}]))
    refused(repo, 8, f"no review is of {repo.git('rev-parse', f'{a}^2').strip()[:12]}", args=(a, "--approvals", str(github)))


# 4. the verdict is recomputed -------------------------------------------------------------------------------------

def _fail_inside(verdict: dict) -> dict:
    verdict["gates"][1]["passed"] = False  # the top level still says pass
    return verdict


def _regress(items: dict) -> None:
    for which, refusal in (("incumbent", 1.0), ("candidate", 0.0)):  # a regression the verdict does not show
        for item in items[which]:
            if item["suite"] == "redteam":
                item["scores"]["refusal"] = refusal


def test_a_verdict_that_passes_over_a_failed_gate_is_refused_and_flagged(repo):
    merge = repo.merge(repo.propose(verdict_hook=_fail_inside))
    refused(repo, 6, "artifacts/gate/verdict.json differs from the verdict recomputed")
    repo.promote(force=True)
    breaks(repo, (merge, "differs from the verdict recomputed from the evaluation samples"))


def test_samples_that_fail_under_a_passing_verdict_are_refused(repo):
    repo.merge(repo.propose(items_hook=_regress))
    refused(repo, 6, "the gate recomputed from the evaluation samples fails (redteam.refusal)")


def test_a_proposal_without_its_verdict_is_refused(repo):
    repo.merge(repo.propose(verdict_hook=lambda v: None))
    refused(repo, 6, "artifacts/gate/verdict.json is not in the merge: the verdict is required evidence")


def test_a_ledger_truncated_and_later_restored_is_named(repo):
    """The ledger at HEAD is whole again and its chain intact; only the check of every version catches the cut."""
    ledger_file = repo.path / LEDGER
    whole = ledger_file.read_text()
    ledger_file.write_text("".join(whole.splitlines(keepends=True)[:-2]))
    cut = repo.commit_all("trim the ledger")
    ledger_file.write_text(whole)
    repo.commit_all("put it back")  # the ledger at HEAD is whole again; its history is not
    breaks(repo, (cut, f"{LEDGER}: shrinks {LEDGER} from"))


def test_a_line_inserted_and_later_removed_is_named(repo):
    ledger_file = repo.path / LEDGER
    whole = ledger_file.read_text().splitlines(keepends=True)
    ledger_file.write_text("".join(whole[:2] + [whole[1]] + whole[2:]))  # a copy of line 2, in the middle
    inserted = repo.commit_all("note")
    ledger_file.write_text("".join(whole))
    restored = repo.commit_all("undo")
    breaks(repo, (inserted, f"{LEDGER} here is not whole lines of the ledger at HEAD"),
           (restored, f"{LEDGER}: shrinks {LEDGER} from"))


# 5. tags reconciled -----------------------------------------------------------------------------------------------

def test_moved_forged_deleted_and_unsigned_tags_are_named(repo):
    v1, v2 = repo.promotions
    repo.git("tag", "-f", "-s", f"{POLICY}#prod#2", v1, "-m", "moved")
    repo.git("tag", "-s", f"{POLICY}#prod#3", v2, "-m", "forged")
    repo.git("tag", "-d", f"{POLICY}#prod#1")
    repo.git("tag", "-f", "-a", f"{POLICY}@v2.0.0", v2, "-m", f"x\n\nRlops-Ledger: seq=9 sha256:{'0' * 64}\n")
    breaks(repo, (v1, f"refs/tags/{POLICY}#prod#2: the tag was moved"),
           (v2, f"refs/tags/{POLICY}#prod#3: a tag the ledger does not explain"),
           (v1, f"refs/tags/{POLICY}#prod#1: the tag is missing"),
           (v2, f"refs/tags/{POLICY}@v2.0.0: the tag carries no signature"))


def test_a_main_reset_to_before_the_last_promotion_is_caught(repo):
    v2 = repo.promotions[-1]
    repo.git("reset", "-q", "--hard", f"{v2}^1")  # before v2's merge; its tags are left behind
    breaks(repo, (v2, "the history lost a recorded promotion"))
    from rlops.registry import versions  # and `rlops propose` will not hand out v2's name again

    assert versions.next_version(repo.path, POLICY) == "v2"
    assert versions.taken_elsewhere(repo.path, POLICY, "v2") == f"tag {POLICY}@v2.0.0"
    assert versions.taken_elsewhere(repo.path, POLICY, "v3") is None


# 6. a rollback changes exactly the production line ---------------------------------------------------------------

def _rollback_branch(repo: SynthRepo, change) -> str:
    from rlops.promotion.rollback import rollback

    with repo.environment():
        p = rollback(repo.path, None, "tone", push=False)
    change(repo.path)
    repo.git("commit", "-q", "-a", "--amend", "--no-edit")
    repo.git("checkout", "-q", "main")
    return p.branch


def test_a_rollback_that_also_rewrites_a_digest_or_starts_a_canary_is_refused(repo):
    def digest(root: Path) -> None:
        path = root / f"registry/{POLICY}/v1/model.dvc"
        path.write_text(path.read_text().replace("md5: ", "md5: 0", 1))

    def canary(root: Path) -> None:
        path = root / MANIFEST
        path.write_text(path.read_text().replace("canary: null", "canary:\n  version: v9\n  fraction: 0.5"))

    branch = _rollback_branch(repo, digest)
    repo.merge(branch)
    refused(repo, 6, f"also changes registry/{POLICY}/v1/model.dvc: a registered version is write-once")
    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.git("branch", "-D", branch)
    repo.merge(_rollback_branch(repo, canary))
    refused(repo, 6, "the rollback changes more than the production line")


def test_a_rollback_ignores_what_dvc_left_and_refuses_a_real_change(repo):
    """Issue 10 item 6: `dvc plots show`'s dvc_plots/ is DVC's own, no uncommitted change; an edited file is."""
    from rlops.errors import InvalidInput
    from rlops.promotion.rollback import rollback

    (repo.path / "dvc_plots").mkdir()
    (repo.path / "dvc_plots/index.html").write_text("<html></html>")
    (repo.path / "notes.txt").write_text("mine")
    with repo.environment(), pytest.raises(InvalidInput) as refused_:
        rollback(repo.path, None, "tone", push=False)
    assert "notes.txt" in str(refused_.value) and "dvc_plots" not in str(refused_.value)
    (repo.path / "notes.txt").unlink()
    with repo.environment():
        p = rollback(repo.path, None, "tone", push=False)
    shown = repo.git("show", "--name-only", "--format=", p.branch).split()
    assert sorted(shown) == sorted(["audit/ledger.jsonl", MANIFEST])


# 7. robustness ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["v1.0.0", "v2 x"])
def test_an_invalid_version_name_is_refused_before_anything_is_written(repo, name):
    repo.merge(repo.propose(version=name))
    refused(repo, 6, f"the proposal names version {name!r}, which is not a version name")


def test_the_ledger_commit_takes_only_the_ledger(repo):
    repo.merge(repo.propose())
    (repo.path / "notes.txt").write_text("staged, unrelated\n")
    repo.git("add", "notes.txt")
    p = rlops(repo, "promote")
    assert p.returncode == 0, p.stderr
    assert repo.git("show", "--name-only", "--format=", "HEAD").split() == [LEDGER]
    assert repo.git("diff", "--cached", "--name-only").split() == ["notes.txt"]


def test_a_renamed_policy_is_a_listed_break_not_a_crash(repo):
    policy = repo.path / "specs/policy.yaml"
    policy.write_text(policy.read_text().replace(f"policy: {POLICY}", "policy: renamed-agent"))
    push = repo.commit_all("rename the policy")
    p = rlops(repo, "audit", "verify")
    assert p.returncode == 9 and "Traceback" not in p.stderr, p.stdout + p.stderr
    assert push[:12] in p.stdout


def test_a_refusal_after_recorded_merges_says_what_was_recorded(repo):
    good = repo.merge(repo.propose())
    bad = repo.merge(repo.propose(), approvers=())
    p = rlops(repo, "promote")
    assert p.returncode == 8 and "Traceback" not in p.stderr, p.stderr
    assert f"1 earlier merge(s) were recorded (v3 from {good[:12]}); {bad[:12]} was not" in p.stderr
    assert "nothing was recorded" not in p.stderr


def test_a_failure_while_tagging_takes_back_the_ledger_commit_and_the_tags(repo, monkeypatch):
    from rlops.promotion import promote as promote_mod
    from rlops.registry import tags

    repo.merge(repo.propose())
    before = state(repo)

    def broken(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(tags, "assign", broken)
    with repo.environment(), pytest.raises(OSError):
        promote_mod.promote(repo.path)
    assert state(repo) == before and not repo.git("status", "--porcelain").strip()


def test_a_tag_name_already_taken_is_refused_before_anything_is_written(repo):
    merge = repo.merge(repo.propose())
    repo.git("tag", "-s", f"{POLICY}@v3.0.0", merge, "-m", "early")
    refused(repo, 6, f"the tag(s) {POLICY}@v3.0.0 exist already")
