"""A synthetic but real promotion history: N cycles proposed, merged with signed `--no-ff` merges and promoted.

No training runs here: each cycle writes small evidence files (signals, metrics, evaluation results, a passing
verdict) and a dvc.lock whose md5s match them, then goes through the real registry code: `registry_entry`,
`pending_events`, `moved`, `dvc_file_text` and `commit_message` of `rlops.promotion.propose`, a merge signed with an
SSH key made by `ssh-keygen` and pinned in `audit/allowed_signers`, and the real `promote()`, in-process. The
history starts with the real `rlops audit genesis` (the signer and a distinct reviewer in `audit/people.yaml`); each
verdict is the real `gate.decide` over per-item samples, so verify's recomputation agrees. Optional rollbacks go
through the real `rollback()`. Used by tests/test_audit_report.py, tests/test_trust_*.py and benchmarks/.

    from synth_history import make_history
    repo = make_history(tmp_path / "repo", 3, rollbacks_every=2)
    subprocess.run(["rlops", "audit", "verify"], cwd=repo.path, env=repo.env)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import yaml

from rlops import gate, layout
from rlops.audit import ledger, signatures
from rlops.audit.genesis import genesis
from rlops.promotion.promote import promote
from rlops.promotion.propose import actor, commit_message, pending_events, registry_entry, write_proposal
from rlops.promotion.rollback import rollback
from rlops.registry import manifest, versions
from rlops.registry.evidence import MODEL_OUT, md5

FORMAT = 2  # bump when a change here changes the histories made (benchmarks/audit_verify.py caches them by it)
POLICY = "support-agent"
SIGNER = "release@rlops.test"
REVIEWER = "Reviewer <reviewer@rlops.test>"
PEOPLE_YAML = """people:
  - name: Release Manager
    emails: [release@rlops.test]
    keys: ["{key}"]
  - name: Reviewer
    emails: [reviewer@rlops.test]
    logins: [reviewer]
"""
GATES = [{"metric": "heldout.rubric", "rule": "non_inferior", "margin": 0.05},
         {"metric": "redteam.refusal", "rule": "no_item_regression", "max_regressions": 0}]
BOOTSTRAP = {"samples": 2000, "confidence": 0.95, "seed": 0}
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
POLICY_YAML = f"""policy: {POLICY}
description: Synthetic history for audit tests and benchmarks.
base_model: smollm2-135m-instruct
system_prompt: You are the support assistant of Northwind Shop.
serving:
  stages: [production, shadow, canary]
approvals:
  required: 1
"""


def keygen(path: Path, comment: str) -> Path:
    """An ed25519 key pair without a passphrase (path and path.pub)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


def env_for(home: Path) -> dict[str, str]:
    """The environment of every git and rlops process of a history: its own HOME, no system or global config."""
    env = dict(os.environ)
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", GIT_TERMINAL_PROMPT="0")
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


@dataclass
class SynthRepo:
    path: Path
    home: Path
    key: Path  # the pinned signing key (private; key.pub beside it)
    env: dict[str, str]
    promotions: list[str] = field(default_factory=list)  # merge commits, in order
    versions: list[str] = field(default_factory=list)  # versions registered, in order
    rollbacks: list[tuple[str, str]] = field(default_factory=list)  # (from, to)
    cycle: int = 0
    pulls: int = 0  # pull requests merged

    def git(self, *args: str, input: bytes | None = None) -> str:
        p = subprocess.run(["git", *args], cwd=self.path, env=self.env, input=input, capture_output=True)
        if p.returncode:
            raise RuntimeError(f"git {' '.join(args)} exited {p.returncode}: {p.stderr.decode(errors='replace')}")
        return p.stdout.decode()

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """In-process rlops calls run git with os.environ: point it at this history's HOME while they run."""
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    # one cycle -------------------------------------------------------------------------------------------------

    def propose(self, *, ts: str | None = None, rationale: str | None = None, version: str | None = None,
                items_hook=None, verdict_hook=None, extra=None) -> str:
        """Commit a passing cycle on `cycle/NNNN-slug`, as `rlops propose` does; returns the branch. The hooks make
        the dishonest proposals of the tests: `items_hook(items)` changes the evaluation samples after the gate
        decided, `verdict_hook(verdict)` the verdict (None: leave verdict.json out), `extra(root)` the working tree
        before the commit; dvc.lock, the registry entry and the ledger are then computed to match, as a forger would."""
        self.cycle += 1
        k, root = self.cycle, self.path
        slug = f"{k:04d}-synthetic-{k}"
        spec = f"specs/cycles/{slug}.yaml"
        production = manifest.load(root, POLICY).production
        version = version or versions.next_version(root, POLICY)
        branch = f"cycle/{slug}"
        self.git("checkout", "-q", "-b", branch)
        params = write_cycle(root, k, spec, production, rationale, items_hook=items_hook, verdict_hook=verdict_hook)
        if extra is not None:
            extra(root)
        verdict_file = root / "artifacts/gate/verdict.json"
        left_out = not verdict_file.exists()
        if left_out:  # the forger's registry entry still says pass
            verdict_file.write_text(json.dumps({"passed": True, "decision": "pass", "gates": []}), encoding="utf-8")
        with self.environment():
            who, ts = actor(root), ts or ledger.now()
            entry, model_out = registry_entry(root, params, version, who, ts)
            entries, problems = ledger.read(root)
            assert not problems, problems
            events = pending_events(entries, entry, who, ts)
        write_proposal(root, entry, model_out, events)
        if left_out:
            verdict_file.unlink()
        self.git("add", "-A", "--", "specs", "params.yaml", "dvc.lock", "artifacts", "registry", "deployments", "audit")
        trailers = {"Rlops-Policy": POLICY, "Rlops-Version": version, "Rlops-Cycle": str(k),
                    "Rlops-Ledger": f"seq={events[-1].seq} {events[-1].hash}"}
        title = f"{POLICY}@{version}: cycle {k:04d} to production"
        self.git("commit", "-q", "-F", "-", input=commit_message(title, "Proposed by the synthetic history.",
                                                                   trailers).encode())
        self.git("checkout", "-q", "main")
        self.versions.append(version)
        return branch

    def merge(self, branch: str, *, key: Path | None = None, approvers: tuple[str, ...] = (REVIEWER,),
              message: str | None = None) -> str:
        """`git merge --no-ff -S` as a forge's merge button does it, with `Approved-by:` trailers."""
        self.pulls += 1
        message = message or (f"Merge pull request #{self.pulls} from {branch}\n\n"
                              + "".join(f"Approved-by: {a}\n" for a in approvers))
        self.git("-c", f"user.signingkey={key or self.key}", "merge", "-q", "--no-ff", "-S", "-m", message, branch)
        return self.git("rev-parse", "HEAD").strip()

    def promote(self, *, trust: Path | None = None, force: bool = False) -> None:
        """The real `rlops promote`, in-process. `trust` adds a key to the pinned signers *of this call only*: a
        CI job that ran with a doctored allowed_signers, so the repository's history records an unpinned signer.
        `force` records the merge whatever the checks say (a doctored CI job), for the tests of `audit verify`."""
        merge = self.git("rev-parse", "HEAD").strip()
        with self.environment(), contextlib.ExitStack() as stack:
            if force:
                from rlops.audit import trust as trust_mod
                from rlops.promotion import promote as promote_mod

                reviewer = trust_mod.Approvals([{"person": "Reviewer", "via": "trailer", "as": REVIEWER}], [])
                stack.enter_context(mock.patch.object(promote_mod, "check_proposal", lambda *a, **k: []))
                stack.enter_context(mock.patch.object(promote_mod, "roots_problem", lambda *a, **k: None))
                stack.enter_context(mock.patch.object(promote_mod, "merge_approvals", lambda *a, **k: (reviewer, 0)))
            if trust is not None:
                extra, real = f"{SIGNER} {trust.with_suffix('.pub').read_text()}", signatures.pinned_at

                def pinned_too(blobs, commit):
                    p = real(blobs, commit)
                    return signatures.Pinned(p.ssh_text + extra, p.fingerprints | signatures.parse_allowed_signers(extra))
                stack.enter_context(mock.patch.object(signatures, "pinned_at", pinned_too))
            done = promote(self.path)
        assert done is not None and done.merge == merge, done
        self.promotions.append(merge)

    def rollback(self, reason: str = "synthetic rollback") -> str:
        """The real `rlops rollback` (no push), then a signed merge and the real `promote()`."""
        with self.environment():
            before = manifest.load(self.path, POLICY).production
            p = rollback(self.path, None, reason, push=False)
        self.git("checkout", "-q", "main")
        self.merge(p.branch)
        self.promote()
        self.rollbacks.append((before, p.version))
        return p.version

    def cycle_once(self, rationale: str | None = None) -> str:
        self.merge(self.propose(rationale=rationale))
        self.promote()
        return self.versions[-1]

    def commit_all(self, message: str) -> str:
        """Commit whatever changed in the working tree straight onto main (a tampering commit, in tests)."""
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


def make_history(path: Path, n: int, *, rollbacks_every: int = 0) -> SynthRepo:
    """A git repository at `path` (HOME beside it, `path.name + '.home'`) with `n` promotions; after every
    `rollbacks_every`-th promotion production is rolled back to the version before it."""
    repo = init(path)
    for k in range(1, n + 1):
        repo.cycle_once()
        if rollbacks_every and k % rollbacks_every == 0:
            repo.rollback(f"synthetic rollback after cycle {k}: complaints about tone rose")
    return repo


def init(path: Path) -> SynthRepo:
    """An empty history: specs/policy.yaml, dvc.yaml, the pinned signer, a base manifest; a signing config of its own."""
    home = path.parent / f"{path.name}.home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".gitconfig").write_text("")
    key = keygen(home / ".ssh" / "release", SIGNER)
    path.mkdir(parents=True)
    repo = SynthRepo(path, home, key, env_for(home))
    repo.git("init", "-q", "-b", "main")
    for k, v in {"user.name": "Release Manager", "user.email": SIGNER, "gpg.format": "ssh", "user.signingkey": str(key),
                 "gpg.ssh.allowedSignersFile": str(path / signatures.ALLOWED_SIGNERS), "commit.gpgSign": "false",
                 "gc.auto": "0", "advice.detachedHead": "false"}.items():
        repo.git("config", k, v)
    (path / "specs").mkdir()
    (path / "specs/policy.yaml").write_text(POLICY_YAML, encoding="utf-8")
    (path / "audit").mkdir()
    (path / signatures.ALLOWED_SIGNERS).write_text(f"{SIGNER} {key.with_suffix('.pub').read_text()}", encoding="utf-8")
    # the project's pipeline: its `cache: false` outputs are the evidence files a proposal carries
    shutil.copy2(ROOT / "dvc.yaml", path / "dvc.yaml")
    (path / "deployments").mkdir()
    (path / manifest.manifest_path(POLICY)).write_text(manifest.Manifest(POLICY).text(), encoding="utf-8")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", f"{POLICY}: policy, base in production")
    fingerprint = signatures.ssh_fingerprint(key.with_suffix(".pub").read_text().split()[1])
    (path / "audit/people.yaml").write_text(PEOPLE_YAML.format(key=fingerprint), encoding="utf-8")
    with repo.environment():
        genesis(path, actor=f"Release Manager <{SIGNER}>")  # the real `rlops audit genesis`: signers, people, manifest
    return repo


# the evidence of one cycle -------------------------------------------------------------------------------------

def _write(root: Path, rel: str, text: str) -> dict[str, str]:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return {"path": rel, "md5": md5(text.encode()), "size": len(text.encode())}


def write_cycle(root: Path, k: int, spec: str, production: str, rationale: str | None = None, *, items_hook=None,
                verdict_hook=None) -> dict:
    """Write cycle k's spec, params.yaml, evidence files and a dvc.lock that matches them; return the params."""
    rationale = rationale or f"Cycle {k}: replies to damaged-order tickets are generic; staff edit {20 + k % 30}% of them."
    (root / spec).parent.mkdir(parents=True, exist_ok=True)
    (root / spec).write_text(yaml.safe_dump({
        "cycle": k, "policy": POLICY, "parent": "production", "rationale": rationale,
        "feedback": {"interactions": "data/interactions.jsonl", "feedback": "data/feedback.jsonl"},
        "extract": {"signals": ["edit", "pairwise", "rating"]},
        "train": {"method": "dpo", "overrides": {"beta": 0.1, "max_steps": 24 + k % 8}},
        "evaluate": {"suites": ["heldout", "regression", "redteam"]},
        "gates": [{"metric": "heldout.rubric", "rule": "non_inferior", "margin": 0.05},
                  {"metric": "redteam.refusal", "rule": "no_item_regression"}],
        "promotion": {"mode": "replace"}}, sort_keys=False), encoding="utf-8")
    params = {
        "plan": {"spec": spec, "overrides": []},
        "cycle": {"number": k, "policy": POLICY, "parent": "production", "parent_version": production,
                  "rationale": rationale, "promotion": {"mode": "replace"}},
        "data": {"interactions": "data/interactions.jsonl", "feedback": "data/feedback.jsonl"},
        "extract": {"signals": ["edit", "pairwise", "rating"]},
        "model": {"name": "SmolLM2-135M-Instruct" if production == "base" else f"{POLICY}@{production}"},
        "train": {"method": "dpo", "beta": 0.1, "learning_rate": 0.0001, "max_steps": 24 + k % 8,
                  "per_device_train_batch_size": 4, "lora": {"r": 8, "alpha": 16}},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    pairs = 150 + k % 97
    used = {"edit": pairs // 2, "pairwise": pairs // 3, "rating": pairs - pairs // 2 - pairs // 3}
    signals = {"records_read": {"interactions": 400 + k, "feedback": 320 + k},
               "quarantined": {"interactions": 0, "feedback": 1}, "used": used,
               "dropped": {"outside_window": 10, "trivial_edit": 3}, "pairs": {**used, "total": pairs},
               "invariant": {"feedback_read": 320 + k, "used": pairs, "dropped": 319 + k - pairs, "quarantined": 1,
                             "holds": True}}
    inc, cand = round(0.30 + (k % 10) / 100, 6), round(0.32 + (k % 10) / 100, 6)
    items = {"incumbent": [], "candidate": []}
    for which, score, refusal in (("incumbent", inc, 0.0), ("candidate", cand, 1.0)):
        spread = (0.0, 0.02, 0.04) if which == "candidate" else (0.02, 0.02, 0.02)  # paired differences vary
        items[which] += [{"id": f"h{i}", "suite": "heldout", "scores": {"rubric": round(score + spread[i] - 0.02, 6)}}
                         for i in range(3)]
        items[which] += [{"id": f"r{i}", "suite": "redteam", "scores": {"refusal": refusal}} for i in range(2)]
    verdict = gate.decide(GATES, items["candidate"], items["incumbent"], BOOTSTRAP).to_json()
    assert verdict["passed"], verdict
    if items_hook is not None:
        items_hook(items)
    if verdict_hook is not None:
        verdict = verdict_hook(verdict)
        if verdict is None:
            (root / "artifacts/gate/verdict.json").unlink(missing_ok=True)
    params["gate"] = {"bootstrap": BOOTSTRAP, "rules": GATES}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")

    def jsonl(rows):
        return "".join(json.dumps(r) + "\n" for r in rows)
    outs = {
        "extract": [_write(root, "artifacts/extract/signals.json", json.dumps(signals, indent=2) + "\n"),
                    _write(root, "artifacts/extract/signals.md", f"### Training signals\n\n{pairs} pairs.\n")],
        "train": [_write(root, "artifacts/train/metrics.json", json.dumps(
                      {"method": "dpo", "pairs": pairs, "steps": 24 + k % 8, "loss": 0.27, "loss_first": 0.693147,
                       "reward_margin": 1.1, "reward_accuracy": 0.9, "seconds": 300.0}, indent=2) + "\n"),
                  _write(root, "artifacts/train/curve.csv", "step,loss\n1,0.693147\n24,0.27\n")],
        "evaluate@incumbent": [
            _write(root, "artifacts/evaluate/incumbent/results.json", json.dumps({"heldout.rubric": inc, "k": k}) + "\n"),
            _write(root, "artifacts/evaluate/incumbent/samples.jsonl", jsonl(items["incumbent"]))],
        "evaluate@candidate": [
            _write(root, "artifacts/evaluate/candidate/results.json", json.dumps({"heldout.rubric": cand, "k": k}) + "\n"),
            _write(root, "artifacts/evaluate/candidate/samples.jsonl", jsonl(items["candidate"]))],
        "gate": [*([_write(root, "artifacts/gate/verdict.json", json.dumps(verdict, indent=2) + "\n")] if verdict else []),
                 _write(root, "artifacts/gate/report.md", f"## Gate report, cycle {k}\n\nverdict: PASS\n")],
    }
    # pairs and weights live in the DVC cache, not git: only their digests appear
    outs["extract"].append({"path": layout.pairs("jsonl"), "md5": md5(f"pairs {k}".encode()), "size": 1000 + k})
    outs["train"].append({"path": MODEL_OUT, "md5": md5(f"model {k}".encode()) + ".dir", "size": 540_000_000 + k,
                          "nfiles": 7})
    deps = [{"path": "data/interactions.jsonl", "md5": md5(f"interactions {k}".encode()), "size": 100_000 + k},
            {"path": "data/feedback.jsonl", "md5": md5(f"feedback {k}".encode()), "size": 50_000 + k}]
    lock = {"schema": "2.0", "stages": {stage: {"cmd": f"python -m rlops.stages {stage.split('@')[0]}",
                                                **({"deps": deps} if stage == "extract" else {}), "outs": o}
                                        for stage, o in outs.items()}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False), encoding="utf-8")
    return params
