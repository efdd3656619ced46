"""`signatures.tag_signature`: an annotated tag's signature judged like a commit's (%G? letters, a pinned key), with
real SSH keys from ssh-keygen and a real OpenPGP key from gpg. The in-process verifier (branch sigs) must give the
same answers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import env_for, run

from rlops.audit import signatures


@pytest.fixture
def repo(tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    (home / ".gnupg").mkdir(parents=True, mode=0o700)
    env = env_for(home)
    env["GNUPGHOME"] = str(home / ".gnupg")
    monkeypatch.setenv("GNUPGHOME", env["GNUPGHOME"])
    monkeypatch.setenv("HOME", str(home))
    r = tmp_path / "repo"
    r.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "ci@rlops.test"], ["config", "user.name", "ci"],
                 ["commit", "-q", "--allow-empty", "-m", "one"]):
        run(["git", *args], r, env)
    return r, env, tmp_path


def tag(r: Path, env: dict, name: str, *how: str) -> str:
    run(["git", *how, "tag", "-a", name, "HEAD", "-m", f"{name}\n\nRlops-Ledger: seq=1 sha256:{'0' * 64}"], r, env)
    return run(["git", "rev-parse", f"refs/tags/{name}"], r, env).stdout.strip()


def pinned_ssh(*keys: Path) -> signatures.Pinned:
    text = "".join(f"ci@rlops.test {k.with_suffix('.pub').read_text()}" for k in keys)
    return signatures.Pinned(text, frozenset(signatures.parse_allowed_signers(text)))


def test_ssh_tags_signed_unsigned_unpinned_and_tampered(repo):
    r, env, tmp = repo
    keys = {}
    for name in ("ci", "rogue"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(tmp / name)], check=True)
        keys[name] = tmp / name
    ssh = ["-c", "gpg.format=ssh"]
    good = tag(r, env, "p@v1.0.0", *ssh, "-c", f"user.signingkey={keys['ci']}", "-c", "tag.gpgSign=true")
    sig = signatures.tag_signature(r, good, pinned_ssh(keys["ci"]))
    assert sig.status == "G" and sig.fingerprint in pinned_ssh(keys["ci"]).fingerprints
    assert signatures.problem_with(sig, pinned_ssh(keys["ci"])) is None
    # the same tag, judged against a set of pinned signers that lacks its key
    assert "not pinned" in signatures.problem_with(signatures.tag_signature(r, good, pinned_ssh(keys["rogue"])),
                                                    pinned_ssh(keys["rogue"]))
    unsigned = tag(r, env, "p#prod#1")
    assert signatures.tag_signature(r, unsigned, pinned_ssh(keys["ci"])).status == "N"
    # a tag object whose message was changed after signing: write it back with the old signature
    body = run(["git", "cat-file", "tag", good], r, env).stdout.replace("Rlops-Ledger: seq=1", "Rlops-Ledger: seq=9", 1)
    forged = subprocess.run(["git", "hash-object", "-t", "tag", "-w", "--stdin"], cwd=r, env=env, input=body,
                            capture_output=True, text=True, check=True).stdout.strip()
    assert signatures.tag_signature(r, forged, pinned_ssh(keys["ci"])).status == "B"


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")
def test_gpg_tags_are_judged_by_pinned_fingerprint(repo):
    r, env, _ = repo
    run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
         "ci <ci@rlops.test>", "ed25519", "sign", "never"], r, env)
    listing = run(["gpg", "--with-colons", "--list-keys", "ci@rlops.test"], r, env).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    run(["git", "-c", f"user.signingkey={fpr}", "tag", "-s", "p@v1.0.0", "HEAD", "-m", "v1"], r, env)
    obj = run(["git", "rev-parse", "refs/tags/p@v1.0.0"], r, env).stdout.strip()
    sig = signatures.tag_signature(r, obj, signatures.Pinned("", frozenset()))
    assert sig.status == "G" and sig.fingerprint.upper() == fpr.upper()
    assert "not pinned" in signatures.problem_with(sig, signatures.Pinned("", frozenset()))
    assert signatures.problem_with(sig, signatures.Pinned("", frozenset({fpr.upper()}))) is None
