"""Signature checks with real keys: SSH keys from ssh-keygen, an OpenPGP key from gpg, real commits.

`%G?` = G *and* a pinned fingerprint: an unsigned commit, a tampered commit, an unknown SSH key and an OpenPGP key
that gpg knows but that is not pinned are all refused; a pinned signer on the first parent is what counts.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import env_for, run
from rlops.audit import signatures
from rlops.gitio import BlobReader


@pytest.fixture
def repo(tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    env = env_for(home)
    env["GNUPGHOME"] = str(home / ".gnupg")
    # the checks run in this process and call git, which reads the keyring from the environment
    monkeypatch.setenv("GNUPGHOME", env["GNUPGHOME"])
    monkeypatch.setenv("HOME", str(home))
    (home / ".gnupg").mkdir(mode=0o700)
    r = tmp_path / "repo"
    r.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "alice@rlops.test"],
                 ["config", "user.name", "alice"]):
        run(["git", *args], r, env)
    return r, env, tmp_path


def ssh_key(tmp: Path, name: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(tmp / name)], check=True)
    return tmp / name


def commit(r: Path, env: dict, message: str, *sign: str) -> str:
    run(["git", *sign, "commit", "-q", "--allow-empty", "-m", message], r, env)
    return run(["git", "rev-parse", "HEAD"], r, env).stdout.strip()


def check(r: Path, commit_: str, pinned_at: str) -> str | None:
    with BlobReader(r) as blobs:
        pinned = signatures.pinned_at(blobs, pinned_at)
    return signatures.problem_with(signatures.signature(r, commit_, pinned), pinned)


def test_ssh_signatures(repo):
    r, env, tmp = repo
    alice, mallory = ssh_key(tmp, "alice"), ssh_key(tmp, "mallory")
    before_pin = commit(r, env, "nothing pinned yet")
    (r / "audit").mkdir()
    (r / "audit/allowed_signers").write_text(f"# pinned\nalice@rlops.test {alice.with_suffix('.pub').read_text()}")
    run(["git", "add", "audit"], r, env)
    pin = commit(r, env, "pin alice")
    ssh = ["-c", "gpg.format=ssh"]
    good = commit(r, env, "signed by alice", *ssh, "-c", f"user.signingkey={alice}", "-c", "commit.gpgsign=true")
    assert check(r, good, pin) is None
    assert signatures.ssh_fingerprint(alice.with_suffix(".pub").read_text().split()[1]) in \
        signatures.parse_allowed_signers((r / "audit/allowed_signers").read_text())

    bad = commit(r, env, "signed by mallory", *ssh, "-c", f"user.signingkey={mallory}", "-c", "commit.gpgsign=true")
    assert "not pinned" in check(r, bad, pin)

    unsigned = commit(r, env, "unsigned")
    assert "no signature" in check(r, unsigned, pin)

    # a tampered commit: the same signature over a changed message
    raw = run(["git", "cat-file", "commit", good], r, env).stdout.replace("signed by alice", "signed by alice, honest")
    forged = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=r, env=env, input=raw,
                            text=True, capture_output=True, check=True).stdout.strip()
    assert "bad signature" in check(r, forged, pin)

    # the pins of the first parent count: before alice was pinned, her signature proves nothing
    assert "not pinned" in check(r, good, before_pin)


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")
def test_gpg_key_known_but_not_pinned_is_refused_and_pinned_is_accepted(repo):
    r, env, _ = repo
    run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
         "web-flow <noreply@rlops.test>", "ed25519", "sign", "never"], r, env)
    listing = run(["gpg", "--with-colons", "--list-keys", "noreply@rlops.test"], r, env).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    base = commit(r, env, "nothing pinned yet")
    signed = commit(r, env, "signed with gpg", "-c", f"user.signingkey={fpr}", "-c", "commit.gpgsign=true")
    # gpg knows the key (it made it) and trusts it ultimately, but the repository does not pin it
    assert "not pinned" in check(r, signed, base)
    (r / "audit").mkdir()
    (r / "audit/trusted_gpg_keys").write_text(f"# GitHub web-flow, say\n{fpr}\n")
    run(["git", "add", "audit"], r, env)
    pinned = commit(r, env, "pin it")
    assert check(r, signed, pinned) is None


def test_gpg_key_known_but_untrusted_is_refused_even_when_pinned(repo, monkeypatch):
    """`git verify-commit` exits 0 for a known but untrusted OpenPGP key (%G? = U); rlops requires G."""
    r, env, tmp = repo
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    gen = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    run([*gen, "--quick-gen-key", "someone <someone@rlops.test>", "ed25519", "sign", "never"], r, env)
    listing = run(["gpg", "--with-colons", "--list-keys", "someone@rlops.test"], r, env).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    (r / "audit").mkdir()
    (r / "audit/trusted_gpg_keys").write_text(f"{fpr}\n")
    run(["git", "add", "audit"], r, env)
    pinned = commit(r, env, "pin it")
    signed = commit(r, env, "signed", "-c", f"user.signingkey={fpr}", "-c", "commit.gpgsign=true")
    # another keyring that knows the public key without trusting it, as a fresh CI runner after `gpg --import`
    public = subprocess.run(["gpg", "--armor", "--export", fpr], cwd=r, env=env, capture_output=True, check=True).stdout
    other = tmp / "gnupg-ci"
    other.mkdir(mode=0o700)
    env = {**env, "GNUPGHOME": str(other)}
    subprocess.run(["gpg", "--batch", "--import"], cwd=r, env=env, input=public, capture_output=True, check=True)
    monkeypatch.setenv("GNUPGHOME", str(other))
    assert subprocess.run(["git", "verify-commit", signed], cwd=r, env=env, capture_output=True).returncode == 0
    assert "untrusted" in check(r, signed, pinned)
