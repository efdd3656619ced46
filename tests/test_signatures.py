"""Signature checks with real keys: SSH keys from ssh-keygen, an OpenPGP key from gpg, real commits.

`%G?` = G *and* a pinned fingerprint: an unsigned commit, a tampered commit, an unknown SSH key and an OpenPGP key
that gpg knows but that is not pinned are all refused; a pinned signer on the first parent is what counts.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import env_for, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    yield r, env, tmp_path
    # gpg starts an agent per keyring that outlives the test: stop the ones this test's keyrings started
    if shutil.which("gpgconf"):
        for keyring in (home / ".gnupg", tmp_path / "gnupg-ci"):
            if keyring.is_dir():
                subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**env, "GNUPGHOME": str(keyring)},
                               capture_output=True)


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
    run(["git", "-c", f"user.signingkey={fpr}", "tag", "-s", "support-agent#prod#1", "-m", "anchor", signed], r, env)
    tag = run(["git", "rev-parse", "refs/tags/support-agent#prod#1"], r, env).stdout.strip()
    # another keyring that knows the public key without trusting it, as a fresh CI runner after `gpg --import`
    public = subprocess.run(["gpg", "--armor", "--export", fpr], cwd=r, env=env, capture_output=True, check=True).stdout
    other = tmp / "gnupg-ci"
    other.mkdir(mode=0o700)
    env = {**env, "GNUPGHOME": str(other)}
    subprocess.run(["gpg", "--batch", "--import"], cwd=r, env=env, input=public, capture_output=True, check=True)
    monkeypatch.setenv("GNUPGHOME", str(other))
    assert subprocess.run(["git", "verify-commit", signed], cwd=r, env=env, capture_output=True).returncode == 0
    assert "untrusted" in check(r, signed, pinned)
    with BlobReader(r) as blobs:
        tag_sig = signatures.tag_signature(r, tag, signatures.pinned_at(blobs, pinned), blobs=blobs)
    assert tag_sig.status == "U" and tag_sig.fingerprint == fpr  # the signed tag, as the commit: known, not trusted


# --- SSH signatures checked in-process, cross-checked against git + ssh-keygen ---------------------------------------

KEY_TYPES = {"ed25519": ["-t", "ed25519"], "ecdsa-256": ["-t", "ecdsa", "-b", "256"],
             "ecdsa-384": ["-t", "ecdsa", "-b", "384"], "ecdsa-521": ["-t", "ecdsa", "-b", "521"],
             "rsa": ["-t", "rsa", "-b", "2048"]}
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def keygen(tmp: Path, kind: str, name: str = "alice") -> Path:
    path = tmp / f"{name}-{kind}"
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", *KEY_TYPES[kind], "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


def pubkey(key: Path) -> str:
    return Path(f"{key}.pub").read_text().strip()


def ssh_sign(key: Path, data: bytes, namespace: str = "git", hashalg: str | None = None) -> bytes:
    """`ssh-keygen -Y sign`, as git runs it (git passes no hash option: sha512)."""
    opts = ["-O", f"hashalg={hashalg}"] if hashalg else []
    return subprocess.run(["ssh-keygen", "-Y", "sign", "-n", namespace, "-f", str(key), *opts], input=data,
                          capture_output=True, check=True).stdout


def write_object(r: Path, env: dict, kind: str, raw: bytes) -> str:
    return subprocess.run(["git", "hash-object", "-t", kind, "-w", "--stdin"], cwd=r, env=env, input=raw,
                          capture_output=True, check=True).stdout.decode().strip()


def signed_commit(r: Path, env: dict, message: str, sign) -> str:
    """A commit object over the empty tree whose `gpgsig` header holds `sign(payload)`, written with hash-object."""
    payload = (f"tree {EMPTY_TREE}\nauthor alice <alice@rlops.test> 1700000000 +0000\n"
               f"committer alice <alice@rlops.test> 1700000000 +0000\n\n{message}\n").encode()
    armored = sign(payload)
    head, _, body = payload.partition(b"\n\n")
    gpgsig = b"gpgsig " + armored.rstrip(b"\n").replace(b"\n", b"\n ")
    return write_object(r, env, "commit", head + b"\n" + gpgsig + b"\n\n" + body)


def by_git(r: Path, env: dict, sha: str, allowed: str) -> signatures.Signature:
    """The cross-check: git's %G? %GF %GP %GS, with ssh-keygen reading `allowed` as the allowed signers file."""
    f = r.parent / "allowed_signers.check"
    f.write_text(allowed)
    out = run(["git", "-c", f"gpg.ssh.allowedSignersFile={f}", "log", "-1", "--format=%G?%x00%GF%x00%GP%x00%GS", sha],
              r, env).stdout.rstrip("\n").split("\0")
    return signatures.Signature(*out)


def in_process(r: Path, sha: str, allowed: str) -> signatures.Signature | None:
    """The in-process verdict alone (None: it leaves the commit to git)."""
    with BlobReader(r) as blobs:
        payload, armored = signatures.split_commit(blobs.read(sha))
    return signatures.N if armored is None else signatures.ssh_verdict(payload, armored,
                                                                        signatures.Pinned(allowed, frozenset()))


def verdict(r: Path, sha: str, allowed: str) -> signatures.Signature:
    with BlobReader(r) as blobs:
        return signatures.signature(r, sha, signatures.Pinned(allowed, frozenset()), blobs=blobs)


@pytest.mark.parametrize("kind", sorted(KEY_TYPES))
def test_in_process_verdicts_equal_git_and_ssh_keygen(repo, kind):
    r, env, tmp = repo
    alice, mallory = keygen(tmp, kind), keygen(tmp, "ed25519", "mallory")
    pinned = f"# pinned\nalice@rlops.test {pubkey(alice)}\nmallory@rlops.test {pubkey(mallory)}\n"
    unpinned = f"mallory@rlops.test {pubkey(mallory)}\n"
    good = signed_commit(r, env, f"signed by alice's {kind} key", lambda p: ssh_sign(alice, p))
    sha256 = signed_commit(r, env, "hashed with sha256", lambda p: ssh_sign(alice, p, hashalg="sha256"))
    for sha in (good, sha256):
        assert in_process(r, sha, pinned) == by_git(r, env, sha, pinned) == \
            signatures.Signature("G", signatures.ssh_fingerprint(pubkey(alice).split()[1]), "", "alice@rlops.test")
        assert in_process(r, sha, unpinned) == by_git(r, env, sha, unpinned) == \
            signatures.Signature("U", signatures.ssh_fingerprint(pubkey(alice).split()[1]), "", "")
        assert in_process(r, sha, "") == by_git(r, env, sha, "")
        assert verdict(r, sha, pinned) == by_git(r, env, sha, pinned)

    # tampered: the same gpgsig over a changed message; the in-process check must not pass it, and git says B
    raw = run(["git", "cat-file", "commit", good], r, env).stdout.replace("signed by", "signed, honestly, by")
    forged = write_object(r, env, "commit", raw.encode())
    assert by_git(r, env, forged, pinned).status == "B"
    assert in_process(r, forged, pinned) is None
    assert verdict(r, forged, pinned) == by_git(r, env, forged, pinned)

    # a signature made for another namespace (ssh-keygen -Y sign -n file) is not a git signature
    other = signed_commit(r, env, "signed for files", lambda p: ssh_sign(alice, p, namespace="file"))
    assert by_git(r, env, other, pinned).status == "B"
    assert in_process(r, other, pinned) is None
    assert verdict(r, other, pinned) == by_git(r, env, other, pinned)


def test_git_commit_dash_s_and_unsigned(repo):
    """Commits signed by `git commit -S` itself (gpg.format=ssh), and an unsigned one: decided in-process, as git does."""
    r, env, tmp = repo
    alice = keygen(tmp, "ecdsa-256")
    pinned = f"alice@rlops.test {pubkey(alice)}\n"
    ssh = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={alice}", "-c", "commit.gpgsign=true"]
    shas = [commit(r, env, f"commit {i}\n\nwith a body\n", *ssh) for i in range(3)] + [commit(r, env, "unsigned")]
    for sha in shas:
        assert in_process(r, sha, pinned) is not None
        assert in_process(r, sha, pinned) == verdict(r, sha, pinned) == by_git(r, env, sha, pinned)
    assert [verdict(r, sha, pinned).status for sha in shas] == ["G", "G", "G", "N"]


def test_rsa_sha2_256_signature(repo):
    """ssh-keygen signs with rsa-sha2-512; an rsa-sha2-256 SSHSIG (other tools make them) is checked as well."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    r, env, tmp = repo
    alice = keygen(tmp, "rsa")
    private = serialization.load_ssh_private_key(alice.read_bytes(), password=None)
    key_blob = base64.b64decode(pubkey(alice).split()[1])

    def string(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    def sign(payload: bytes) -> bytes:
        signed = b"SSHSIG" + string(b"git") + string(b"") + string(b"sha512") + string(hashlib.sha512(payload).digest())
        raw = private.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        blob = b"SSHSIG" + struct.pack(">I", 1) + string(key_blob) + string(b"git") + string(b"") + \
            string(b"sha512") + string(string(b"rsa-sha2-256") + string(raw))
        b64 = base64.b64encode(blob).decode()
        return ("-----BEGIN SSH SIGNATURE-----\n" + "\n".join(b64[i:i + 70] for i in range(0, len(b64), 70)) +
                "\n-----END SSH SIGNATURE-----\n").encode()

    sha = signed_commit(r, env, "rsa-sha2-256", sign)
    pinned = f"alice@rlops.test {pubkey(alice)}\n"
    assert in_process(r, sha, pinned) == by_git(r, env, sha, pinned)
    assert by_git(r, env, sha, pinned).status == "G"


@pytest.mark.parametrize("line, good", [
    ('alice@rlops.test namespaces="git" {key}', True),  # an option: ssh-keygen reads it
    # the key is listed, but not for this signature: an in-process check that skipped the option would say G
    ('alice@rlops.test valid-before="20000101" {key}', False),
    ('alice@rlops.test valid-after="29990101" {key}', False),
    ('alice@rlops.test namespaces="file" {key}', False),
    ("alice@rlops.test cert-authority {key}", False),
    ("bob@rlops.test,alice@rlops.test {key}", None),  # a principal list
    ("*@rlops.test {key}", None),  # a pattern
    ("alice@rlops.test {key}\nalice2@rlops.test {key}", None),  # listed twice
])
def test_allowed_signers_that_only_ssh_keygen_reads_fall_back(repo, line, good):
    r, env, tmp = repo
    alice = keygen(tmp, "ed25519")
    sha = signed_commit(r, env, "signed", lambda p: ssh_sign(alice, p))
    allowed = line.format(key=pubkey(alice)) + "\n"
    assert signatures.allowed_keys(allowed) is None
    assert in_process(r, sha, allowed) is None
    git_says = by_git(r, env, sha, allowed)
    assert verdict(r, sha, allowed) == git_says
    if good is not None:
        assert (git_says.status == "G") is good, git_says


def test_keys_in_process_does_not_support_fall_back(repo):
    """A signature by an SSH certificate goes to ssh-keygen, with a cert-authority line or a plain one (sk-* keys,
    the other kind left to it, need a hardware token and are not made here)."""
    r, env, tmp = repo
    ca, alice = keygen(tmp, "ed25519", "ca"), keygen(tmp, "ed25519")
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "alice", "-n", "alice@rlops.test", f"{alice}.pub"],
                   check=True, capture_output=True)
    cert = Path(f"{alice}-cert.pub")
    sha = signed_commit(r, env, "signed with a certificate", lambda p: ssh_sign(Path(f"{alice}-cert.pub"), p))
    allowed = f"alice@rlops.test cert-authority {pubkey(ca)}\n"
    assert in_process(r, sha, allowed) is None
    assert verdict(r, sha, allowed) == by_git(r, env, sha, allowed)
    # a certificate signature against a plain allowed_signers file: the key in the signature is a certificate
    plain = f"alice@rlops.test {pubkey(alice)}\n"
    assert in_process(r, sha, plain) is None
    assert verdict(r, sha, plain) == by_git(r, env, sha, plain)
    assert cert.is_file()


def test_in_process_spawns_no_process(repo, monkeypatch):
    """The point of it: with an open reader, a good SSH signature costs no process (audit verify's 11-13 ms)."""
    r, env, tmp = repo
    alice = keygen(tmp, "ed25519")
    sha = signed_commit(r, env, "signed", lambda p: ssh_sign(alice, p))
    pinned = signatures.Pinned(f"alice@rlops.test {pubkey(alice)}\n", frozenset())
    with BlobReader(r) as blobs:
        def no_process(*a, **k):
            raise AssertionError(f"a process was started: {a}")
        monkeypatch.setattr(subprocess, "run", no_process)
        monkeypatch.setattr(subprocess, "Popen", no_process)
        assert signatures.signature(r, sha, pinned, blobs=blobs).status == "G"
        monkeypatch.undo()
        # the switch the benchmark uses: every signature through git, as before
        monkeypatch.setenv(signatures.ENV_SWITCH, "git")
        monkeypatch.setattr(signatures, "ssh_verdict", no_process)
        assert signatures.signature(r, sha, pinned, blobs=blobs).status == "G"


def tag_by_git(r: Path, env: dict, name: str, allowed: str) -> str:
    """`git verify-tag`'s own word, the cross-check for tags: Good (with principal), or its exit code."""
    f = r.parent / "allowed_signers.check"
    f.write_text(allowed)
    p = run(["git", "-c", f"gpg.ssh.allowedSignersFile={f}", "verify-tag", name], r, env, check=False)
    return p.stderr.splitlines()[0] if p.stderr else f"exit {p.returncode}"


def test_tag_signatures(repo):
    r, env, tmp = repo
    alice, mallory = keygen(tmp, "ed25519"), keygen(tmp, "ecdsa-384", "mallory")
    pinned = f"alice@rlops.test {pubkey(alice)}\n"
    target = commit(r, env, "the merge")
    ssh = ["-c", "gpg.format=ssh"]
    run(["git", *ssh, "-c", f"user.signingkey={alice}", "tag", "-s", "support-agent#prod#1", "-m",
         "Rlops-Ledger: seq=3 abc", target], r, env)
    run(["git", *ssh, "-c", f"user.signingkey={mallory}", "tag", "-s", "support-agent#prod#2", "-m", "forged", target],
        r, env)
    run(["git", "tag", "-a", "support-agent@v1.0.0", "-m", "unsigned", target], r, env)
    # a message quoting a signature block: git splits at the last one, the tag's own signature
    run(["git", *ssh, "-c", f"user.signingkey={alice}", "tag", "-s", "quoting", "-m",
         "as quoted:\n-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n", target], r, env)

    def obj(name: str) -> str:
        return run(["git", "rev-parse", f"refs/tags/{name}"], r, env).stdout.strip()

    def check_tag(sha: str, allowed: str = pinned, **kw) -> signatures.Signature:
        return signatures.tag_signature(r, sha, signatures.Pinned(allowed, frozenset()), **kw)

    fp = signatures.ssh_fingerprint(pubkey(alice).split()[1])
    with BlobReader(r) as blobs:
        assert check_tag(obj("support-agent#prod#1"), blobs=blobs) == signatures.Signature("G", fp, "", "alice@rlops.test")
    assert tag_by_git(r, env, "support-agent#prod#1", pinned).startswith('Good "git" signature for alice@rlops.test')
    assert check_tag(obj("support-agent#prod#2")).status == "U"
    assert tag_by_git(r, env, "support-agent#prod#2", pinned).startswith('Good "git" signature with ECDSA key')
    assert check_tag(obj("support-agent@v1.0.0")) == signatures.N
    with BlobReader(r) as blobs:
        payload, armored = signatures.split_tag(blobs.read(obj("quoting")))
    assert signatures.ssh_verdict(payload, armored, signatures.Pinned(pinned, frozenset())).status == "G"
    assert tag_by_git(r, env, "quoting", pinned).startswith('Good "git" signature for alice@rlops.test')
    assert check_tag(target) == signatures.N  # a lightweight tag names the commit itself

    # the in-process verdicts equal git verify-tag's, read by the subprocess path
    for name in ("support-agent#prod#1", "support-agent#prod#2"):
        _, armored = signatures.split_tag(run(["git", "cat-file", "tag", name], r, env).stdout.encode())
        assert check_tag(obj(name)) == signatures.tag_signature_by_git(r, obj(name), signatures.Pinned(pinned, frozenset()),
                                                                      armored)

    # a tag object rewritten to anchor another ledger line, keeping alice's signature
    raw = run(["git", "cat-file", "tag", obj("support-agent#prod#1")], r, env).stdout.replace("seq=3", "seq=4")
    forged = write_object(r, env, "tag", raw.encode())
    run(["git", "tag", "-f", "forged", forged], r, env)
    assert "Good" not in tag_by_git(r, env, "forged", pinned)
    with BlobReader(r) as blobs:
        payload, armored = signatures.split_tag(blobs.read(forged))
        assert signatures.ssh_verdict(payload, armored, signatures.Pinned(pinned, frozenset())) is None
    assert check_tag(forged).status == "B"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60),
       kind=st.sampled_from(["ed25519", "ecdsa-256", "rsa"]), pinned_key=st.booleans(),
       flip=st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)))
def test_property_random_commits_agree_with_git(repo, message, kind, pinned_key, flip):
    """Random messages, keys and single-byte tampering: the in-process verdict, whenever it gives one, is git's."""
    r, env, tmp = repo
    alice = keygen(tmp, kind)
    allowed = f"alice@rlops.test {pubkey(alice)}\n" if pinned_key else ""
    sha = signed_commit(r, env, message, lambda p: ssh_sign(alice, p))
    if flip is not None:  # change one byte of the payload (outside the signature header), keeping the signature
        raw = bytearray(run(["git", "cat-file", "commit", sha], r, env).stdout.encode())
        start = raw.index(b"\n\n") + 2
        at = start + flip % (len(raw) - start)
        raw[at] = raw[at] ^ 0x01 if raw[at] not in b"\n" else raw[at]
        sha = write_object(r, env, "commit", bytes(raw))
    git_says = by_git(r, env, sha, allowed)
    mine = in_process(r, sha, allowed)
    assert mine is None or mine == git_says
    assert verdict(r, sha, allowed) == git_says
    if mine is None:
        assert git_says.status not in "GU"  # a signature that verifies is never left to ssh-keygen here


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")
def test_gpg_tag_reads_as_gits_commit_verdict(repo):
    """An OpenPGP-signed tag goes to `git verify-tag`; its verdict reads as git's %G? %GF %GP %GS of a commit signed
    with the same key (G with gpg's ultimate trust, U in a keyring that knows the key without trusting it)."""
    r, env, tmp = repo
    run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
         "web-flow <noreply@rlops.test>", "ed25519", "sign", "never"], r, env)
    listing = run(["gpg", "--with-colons", "--list-keys", "noreply@rlops.test"], r, env).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    signed = commit(r, env, "signed with gpg", "-c", f"user.signingkey={fpr}", "-c", "commit.gpgsign=true")
    run(["git", "-c", f"user.signingkey={fpr}", "tag", "-s", "support-agent#prod#1", "-m", "anchor", signed], r, env)
    tag = run(["git", "rev-parse", "refs/tags/support-agent#prod#1"], r, env).stdout.strip()
    pinned = signatures.Pinned("", frozenset({fpr}))
    of_commit = signatures.signature(r, signed, pinned)
    assert of_commit.status == "G" and of_commit.fingerprint == fpr
    assert signatures.tag_signature(r, tag, pinned) == of_commit
    assert signatures.problem_with(signatures.tag_signature(r, tag, pinned), pinned) is None


def test_blob_reader_keeps_recent_reads_by_object_id_only(repo):
    """What an object id names never changes, so a second read is answered from memory; `HEAD:path` moves."""
    r, env, _ = repo
    (r / "f").write_text("one\n")
    run(["git", "add", "f"], r, env)
    first = commit(r, env, "one")
    with BlobReader(r) as blobs:
        assert blobs.read(first, "f") == b"one\n" and blobs.read("HEAD", "f") == b"one\n"
        assert blobs.read(first, "missing") is None
        (r / "f").write_text("two\n")
        run(["git", "add", "f"], r, env)
        commit(r, env, "two")
        assert blobs.read("HEAD", "f") == b"two\n"
        assert blobs.read(first, "f") == b"one\n" and blobs.read(first, "missing") is None
        # a commit that did not exist when it was first asked for, written later: found then
        raw = run(["git", "cat-file", "commit", first], r, env).stdout.replace("one", "later")
        later = subprocess.run(["git", "hash-object", "-t", "commit", "--stdin"], cwd=r, env=env, input=raw,
                               text=True, capture_output=True, check=True).stdout.strip()
        assert blobs.read(later) is None
        assert write_object(r, env, "commit", raw.encode()) == later
        assert blobs.read(later) == raw.encode()
        blobs._proc.stdin.close()  # the process cannot answer any more: only remembered reads work
        assert blobs.read(first, "f") == b"one\n"


def test_audit_verify_gives_the_same_breaks_in_process_as_through_git(tmp_path, monkeypatch):
    """A real history (tests/synth_history.py): two good promotions, then one merged with a key that is not pinned
    (promoted by a CI job that trusted it). verify lists the same breaks with signatures checked in-process as with
    every signature through git, and in-process it starts no signature process at all."""
    from synth_history import init

    from rlops.audit.verify import verify

    repo = init(tmp_path / "repo")
    repo.cycle_once()
    repo.cycle_once()
    stranger = keygen(tmp_path, "ed25519", "stranger")
    repo.merge(repo.propose(), key=stranger)
    repo.promote(trust=stranger)
    for name, value in repo.env.items():
        monkeypatch.setenv(name, value)

    def through_git(*a, **k):
        raise AssertionError("a signature went to git")

    with monkeypatch.context() as m:
        m.setattr(signatures, "signature_by_git", through_git)
        mine = verify(repo.path)
    monkeypatch.setenv(signatures.ENV_SWITCH, "git")
    gits = verify(repo.path)
    assert [str(b) for b in mine.breaks] == [str(b) for b in gits.breaks]
    assert len(mine.breaks) == 1 and repo.promotions[-1][:12] in str(mine.breaks[0])
    assert "not pinned" in str(mine.breaks[0]) and mine.promotions == 3
