"""Is a commit signed by a pinned signer? `%G?` = G *and* the key's fingerprint is pinned in the repository.

Pinned signers are read from the *first parent* of the commit being checked (the state before the merge), so a
pull request cannot pin its own key: `audit/allowed_signers` (SSH, git's allowedSignersFile format) and
`audit/trusted_gpg_keys` (one OpenPGP fingerprint per line, e.g. GitHub's web-flow key). `git verify-commit`'s exit
code is not enough: it is 0 for a GPG key that is known but untrusted (NOTES.md).
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rlops.gitio import BlobReader

ALLOWED_SIGNERS = "audit/allowed_signers"
TRUSTED_GPG = "audit/trusted_gpg_keys"
MEANING = {
    "G": "a good signature", "B": "a bad signature (the commit was changed after it was signed)",
    "U": "a good signature by an untrusted or unknown key", "X": "a good signature that has expired",
    "Y": "a good signature by an expired key", "R": "a good signature by a revoked key",
    "E": "a signature that cannot be checked (missing key)", "N": "no signature",
}


@dataclass(frozen=True)
class Pinned:
    ssh_text: str  # the allowed_signers file, as git reads it
    fingerprints: frozenset[str]  # SHA256:... of each SSH key, upper-case hex of each OpenPGP key


@dataclass(frozen=True)
class Signature:
    status: str  # git's %G?
    fingerprint: str  # %GF
    primary: str  # %GP (OpenPGP primary key)
    signer: str  # %GS

    @property
    def who(self) -> str:
        return f"{self.signer or 'unknown signer'} ({self.fingerprint or 'no key'})"


def ssh_fingerprint(key_b64: str) -> str:
    digest = hashlib.sha256(base64.b64decode(key_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_allowed_signers(text: str) -> set[str]:
    """Fingerprints of the keys in an allowed_signers file (`principals [options] keytype base64 [comment]`)."""
    prints = set()
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        for i, w in enumerate(words[1:], 1):  # the key type is followed by the base64 blob
            if (w.startswith(("ssh-", "ecdsa-", "sk-"))) and i + 1 < len(words):
                try:
                    prints.add(ssh_fingerprint(words[i + 1]))
                except ValueError:
                    pass
                break
    return prints


def pinned_at(blobs: BlobReader, commit: str) -> Pinned:
    ssh = blobs.text(commit, ALLOWED_SIGNERS) or ""
    gpg = blobs.text(commit, TRUSTED_GPG) or ""
    prints = parse_allowed_signers(ssh)
    prints |= {w.replace(" ", "").upper() for w in gpg.splitlines() if w.strip() and not w.lstrip().startswith("#")}
    return Pinned(ssh, frozenset(prints))


def signature(root: Path, commit: str, pinned: Pinned) -> Signature:
    """git's verdict on `commit`'s signature, checking SSH keys against `pinned` (not the user's own config)."""
    with tempfile.NamedTemporaryFile("w", suffix=".allowed_signers", delete=False) as f:
        f.write(pinned.ssh_text)
    try:
        out = subprocess.run(
            ["git", "-c", f"gpg.ssh.allowedSignersFile={f.name}", "log", "-1", "--format=%G?%x00%GF%x00%GP%x00%GS", commit],
            cwd=root, capture_output=True, text=True, check=True).stdout.rstrip("\n")
    finally:
        os.unlink(f.name)
    status, fp, primary, signer = (out.split("\0") + ["", "", "", ""])[:4]
    return Signature(status or "N", fp, primary, signer)


def problem_with(sig: Signature, pinned: Pinned) -> str | None:
    """None when the signature is good and its key is pinned; otherwise what is wrong, in words."""
    if sig.status == "U":
        return (f"is signed by {sig.who}, a key that is unknown or untrusted here: not pinned in {ALLOWED_SIGNERS} "
                f"or {TRUSTED_GPG} (or not trusted by gpg)")
    if sig.status != "G":
        return f"carries {MEANING.get(sig.status, 'an unknown signature status ' + sig.status)}" + (
            f" by {sig.who}" if sig.status in "XYR" else "")
    keys = {sig.fingerprint, sig.primary.replace(" ", "").upper(), sig.fingerprint.replace(" ", "").upper()}
    if not keys & pinned.fingerprints:
        return f"is signed by {sig.who}, a key that is not pinned in {ALLOWED_SIGNERS} or {TRUSTED_GPG}"
    return None


# replaced by the in-process verifier on branch sigs
def tag_signature(root: Path, tag_object: str, pinned: Pinned) -> Signature:
    """git's verdict on an annotated tag's signature (status letters as %G?), SSH keys checked against `pinned`."""
    import re

    with tempfile.NamedTemporaryFile("w", suffix=".allowed_signers", delete=False) as f:
        f.write(pinned.ssh_text)
    try:
        p = subprocess.run(["git", "-c", f"gpg.ssh.allowedSignersFile={f.name}", "verify-tag", "--raw", tag_object],
                           cwd=root, capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    err = p.stderr
    if "no signature found" in err or "cannot verify a non-tag object" in err:
        return Signature("N", "", "", "")
    ssh = re.search(r'Good "git" signature for (\S+) with \S+ key (SHA256:\S+)', err)
    if ssh and p.returncode == 0:
        return Signature("G", ssh.group(2), "", ssh.group(1))
    if "[GNUPG:]" not in err:  # an SSH signature that does not verify: unknown key, or a changed tag
        key = re.search(r"(SHA256:[A-Za-z0-9+/=]+)", err)
        return Signature("U" if "No principal matched" in err or "not found" in err.lower() else "B",
                         key.group(1) if key else "", "", "")
    status = {"GOODSIG": "G", "BADSIG": "B", "ERRSIG": "E", "EXPSIG": "X", "EXPKEYSIG": "Y", "REVKEYSIG": "R"}
    letter, fpr, primary, who = "E", "", "", ""
    for line in err.splitlines():
        words = line.split()
        if len(words) > 1 and words[1] in status:
            letter = status[words[1]]
            who = " ".join(words[3:])
        if len(words) > 2 and words[1] == "VALIDSIG":
            fpr, primary = words[2], words[-1]
        if len(words) > 1 and words[1] in ("TRUST_UNDEFINED", "TRUST_NEVER") and letter == "G":
            letter = "U"
    return Signature(letter, fpr, primary, who)
