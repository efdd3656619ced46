"""Is a commit signed by a pinned signer? `%G?` = G *and* the key's fingerprint is pinned in the repository.

Pinned signers are read from the *first parent* of the commit being checked (the state before the merge), so a
pull request cannot pin its own key: `audit/allowed_signers` (SSH, git's allowedSignersFile format) and
`audit/trusted_gpg_keys` (one OpenPGP fingerprint per line, e.g. GitHub's web-flow key). `git verify-commit`'s exit
code is not enough: it is 0 for a GPG key that is known but untrusted (NOTES.md).

SSH signatures (SSHSIG, namespace `git`) are checked in this process with `cryptography`, the signed object read
through the caller's open `git cat-file --batch`: one `ssh-keygen` process per merge was 11-13 ms of audit verify's
13 ms per promotion (NOTES.md). The in-process check decides only what it can decide exactly as git and ssh-keygen
do: N (no signature), and G or U for a signature that verifies, by a plain ed25519, ECDSA (nistp256/384/521) or RSA
(rsa-sha2-256/512) key, against an allowed_signers file whose every line is `principal keytype key [comment]`.
Everything else goes to git (`git log --format=%G?`, which runs ssh-keygen or gpg), whose verdict is final: a
signature that does not verify (B, rare: it means tampering), a wrong namespace, OpenPGP, certificates and sk-*
keys, and allowed_signers files with options (`namespaces=`, `valid-after=`, `valid-before=`, `cert-authority`),
principal patterns or lists, or a key listed twice. `RLOPS_SIGNATURES=git` sends every signature to git, as before
(benchmarks/audit_verify.py --compare times both).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import struct
import subprocess
import tempfile
from contextlib import contextmanager
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
    return set(_fingerprints(text))


@functools.lru_cache(maxsize=64)
def _fingerprints(text: str) -> frozenset[str]:  # the file rarely changes: audit verify parses it once, not per merge
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
    return frozenset(prints)


def pinned_at(blobs: BlobReader, commit: str) -> Pinned:
    ssh = blobs.text(commit, ALLOWED_SIGNERS) or ""
    gpg = blobs.text(commit, TRUSTED_GPG) or ""
    prints = parse_allowed_signers(ssh)
    prints |= {w.replace(" ", "").upper() for w in gpg.splitlines() if w.strip() and not w.lstrip().startswith("#")}
    return Pinned(ssh, frozenset(prints))


@contextmanager
def _allowed_signers_file(pinned: Pinned):
    with tempfile.NamedTemporaryFile("w", suffix=".allowed_signers", delete=False) as f:
        f.write(pinned.ssh_text)
    try:
        yield f.name
    finally:
        os.unlink(f.name)


def signature_by_git(root: Path, commit: str, pinned: Pinned) -> Signature:
    """git's own verdict (`git log --format=%G?`, running ssh-keygen or gpg): one process or two per commit."""
    with _allowed_signers_file(pinned) as path:
        out = subprocess.run(
            ["git", "-c", f"gpg.ssh.allowedSignersFile={path}", "log", "-1", "--format=%G?%x00%GF%x00%GP%x00%GS", commit],
            cwd=root, capture_output=True, text=True, check=True).stdout.rstrip("\n")
    status, fp, primary, signer = (out.split("\0") + ["", "", "", ""])[:4]
    return Signature(status or "N", fp, primary, signer)


def signature(root: Path, commit: str, pinned: Pinned, *, blobs: BlobReader | None = None) -> Signature:
    """git's verdict on `commit`'s signature, checking SSH keys against `pinned` (not the user's own config);
    `blobs`, an open reader of `root`, saves starting one."""
    if in_process():
        raw = _raw(root, commit, blobs)
        if raw is not None and raw.startswith(b"tree "):
            try:
                payload, armored = split_commit(raw)
                sig = N if armored is None else ssh_verdict(payload, armored, pinned)
            except Undecided:
                sig = None
            if sig is not None:
                return sig
    return signature_by_git(root, commit, pinned)


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


# --- SSH signatures in-process (PROTOCOL.sshsig of OpenSSH) ---------------------------------------------------------

ENV_SWITCH = "RLOPS_SIGNATURES"  # "git": every signature is checked by git's processes, as before (benchmarks compare)
N = Signature("N", "", "", "")
SSH_ARMOR, SSH_END = b"-----BEGIN SSH SIGNATURE-----", b"-----END SSH SIGNATURE-----"
# the lines git takes as the start of a signature in a tag object (gpg-interface.c, get_format_by_sig)
ARMORS = (b"-----BEGIN PGP SIGNATURE-----", b"-----BEGIN PGP MESSAGE-----", b"-----BEGIN SIGNED MESSAGE-----", SSH_ARMOR)
CURVES = {b"nistp256": ("SECP256R1", "SHA256", 32), b"nistp384": ("SECP384R1", "SHA384", 48),
          b"nistp521": ("SECP521R1", "SHA512", 66)}
MESSAGE_HASHES = {b"sha256": hashlib.sha256, b"sha512": hashlib.sha512}
RSA_SIGNATURES = {b"rsa-sha2-256": "SHA256", b"rsa-sha2-512": "SHA512"}  # ssh-keygen refuses SHA-1 (ssh-rsa) here


class Undecided(Exception):
    """The in-process check cannot give git's verdict exactly: git (ssh-keygen) decides."""


def in_process() -> bool:
    return os.environ.get(ENV_SWITCH, "") != "git"


def _raw(root: Path, sha: str, blobs: BlobReader | None) -> bytes | None:
    if blobs is not None:
        return blobs.read(sha)
    with BlobReader(root) as reader:
        return reader.read(sha)


def split_commit(raw: bytes) -> tuple[bytes, bytes | None]:
    """(signed payload, signature) of a commit object as git splits it: the payload is the object without its
    `gpgsig` header and that header's continuation lines (which start with a space); (raw, None) when unsigned."""
    head, sep, body = raw.partition(b"\n\n")
    payload, sig, state = [], [], "before"
    for line in head.split(b"\n"):
        if state == "in" and line.startswith(b" "):
            sig.append(line[1:])
        elif line.startswith(b"gpgsig"):
            if state != "before" or not line.startswith(b"gpgsig "):
                raise Undecided("a second signature header, or a SHA-256 repository's")
            sig.append(line[len(b"gpgsig "):])
            state = "in"
        else:
            state = "after" if state == "in" else state
            payload.append(line)
    if not sig:
        return raw, None
    return b"\n".join(payload) + sep + body, b"\n".join(sig) + b"\n"


def split_tag(raw: bytes) -> tuple[bytes, bytes | None]:
    """(signed payload, signature) of a tag object as git splits it: at the last line that starts a signature."""
    at, pos = None, 0
    while pos < len(raw):
        if raw.startswith(ARMORS, pos):
            at = pos
        nl = raw.find(b"\n", pos)
        pos = len(raw) if nl < 0 else nl + 1
    return (raw, None) if at is None else (raw[:at], raw[at:])


class _Wire:
    """SSH wire format (RFC 4251): uint32, string, mpint; anything malformed is Undecided (ssh-keygen decides)."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise Undecided("truncated")
        self.at += n
        return self.data[self.at - n:self.at]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def string(self) -> bytes:
        return self.take(self.u32())

    def mpint(self) -> int:
        b = self.string()
        if b and (b[0] & 0x80 or (len(b) > 1 and b[0] == 0 and not b[1] & 0x80)):
            raise Undecided("a negative or non-minimal mpint")
        return int.from_bytes(b, "big")

    def end(self) -> None:
        if self.at != len(self.data):
            raise Undecided("trailing data")


@functools.lru_cache(maxsize=256)
def public_key(blob: bytes):
    """(key type, `cryptography` public key) of a plain ed25519, ECDSA or RSA key in SSH wire format, which must be
    canonical, so that equal keys are equal blobs; Undecided for any other key (certificates, sk-*, DSA)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    w = _Wire(blob)
    kind = w.string()
    if kind == b"ssh-ed25519":
        raw = w.string()
        if len(raw) != 32:
            raise Undecided("an ed25519 key that is not 32 bytes")
        key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    elif kind.startswith(b"ecdsa-sha2-") and kind[len(b"ecdsa-sha2-"):] in CURVES:
        curve = w.string()
        point = w.string()
        size = CURVES.get(curve, ("", "", 0))[2]
        if b"ecdsa-sha2-" + curve != kind or len(point) != 1 + 2 * size or point[0] != 4:
            raise Undecided("an ECDSA key whose curve or point encoding ssh-keygen would read otherwise")
        half = {32: 128, 48: 192, 66: 260}[size]  # OpenSSH refuses coordinates of half the order's bits or fewer
        if min(int.from_bytes(point[1:1 + size], "big"), int.from_bytes(point[1 + size:], "big")).bit_length() <= half:
            raise Undecided("an ECDSA point OpenSSH refuses")
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(getattr(ec, CURVES[curve][0])(), point)
        except ValueError:
            raise Undecided("an ECDSA point not on its curve") from None
    elif kind == b"ssh-rsa":
        e, n = w.mpint(), w.mpint()
        if not 1024 <= n.bit_length() <= 16384 or e < 3 or e % 2 == 0:
            raise Undecided("an RSA key OpenSSH would refuse")
        key = rsa.RSAPublicNumbers(e, n).public_key()
    else:
        raise Undecided(f"key type {kind[:40]!r}")
    w.end()
    return kind, key


@functools.lru_cache(maxsize=64)
def allowed_keys(ssh_text: str) -> dict[bytes, str] | None:
    """key blob -> principal of an allowed_signers file, when every line is `principal keytype key [comment]` with
    one plain principal and each key listed once; None otherwise (options, patterns, certificate authorities, other
    key types, odd lines: ssh-keygen reads those)."""
    keys: dict[bytes, str] = {}
    for line in ssh_text.split("\n"):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if "\r" in line or len(words) < 3 or re.search(r'[,*?!"\\]', words[0]):
            return None
        try:
            blob = base64.b64decode(words[2], validate=True)
            kind, _ = public_key(blob)
        except (Undecided, ValueError):
            return None
        if kind.decode() != words[1] or blob in keys:
            return None
        keys[blob] = words[0]
    return keys


def _dearmor(armored: bytes) -> bytes:
    lines = armored.split(b"\n")
    while lines and lines[-1] == b"":
        lines.pop()
    if len(lines) < 3 or lines[0] != SSH_ARMOR or lines[-1] != SSH_END:
        raise Undecided("not a plain SSH signature armor")
    try:
        return base64.b64decode(b"".join(lines[1:-1]), validate=True)
    except ValueError:
        raise Undecided("bad base64") from None


def _verifies(kind: bytes, key, sig_blob: bytes, signed: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    w = _Wire(sig_blob)
    sig_kind, raw = w.string(), w.string()
    w.end()
    try:
        if kind == b"ssh-ed25519" and sig_kind == kind and len(raw) == 64:
            key.verify(raw, signed)
        elif kind.startswith(b"ecdsa-") and sig_kind == kind:
            rs = _Wire(raw)
            r, s = rs.mpint(), rs.mpint()
            rs.end()
            key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(getattr(hashes, CURVES[kind[11:]][1])()))
        elif kind == b"ssh-rsa" and sig_kind in RSA_SIGNATURES and len(raw) == (key.key_size + 7) // 8:
            key.verify(raw, signed, padding.PKCS1v15(), getattr(hashes, RSA_SIGNATURES[sig_kind])())
        else:
            raise Undecided(f"signature type {sig_kind[:40]!r} for a {kind.decode()} key")
    except InvalidSignature:
        return False
    return True


def ssh_verdict(payload: bytes, armored: bytes, pinned: Pinned) -> Signature | None:
    """git's %G?, %GF, %GP and %GS for an SSH signature over `payload`, computed here; None when git must decide.

    As git does: `ssh-keygen -Y find-principals` in the allowed signers, then `-Y verify -n git -I principal` (G,
    signed by that principal), or `-Y check-novalidate -n git` when no line lists the key (U); what does not verify
    is left to git (B, or whatever ssh-keygen makes of it)."""
    keys = allowed_keys(pinned.ssh_text)
    if keys is None or not armored.startswith(SSH_ARMOR):
        return None
    try:
        w = _Wire(_dearmor(armored))
        if w.take(6) != b"SSHSIG" or w.u32() != 1:
            return None
        key_blob, namespace, reserved, hash_name, sig_blob = (w.string() for _ in range(5))
        w.end()
        if namespace != b"git" or reserved or hash_name not in MESSAGE_HASHES:
            return None
        kind, key = public_key(key_blob)
        signed = b"".join([b"SSHSIG", *(struct.pack(">I", len(x)) + x for x in
                                        (b"git", b"", hash_name, MESSAGE_HASHES[hash_name](payload).digest()))])
        if not _verifies(kind, key, sig_blob, signed):
            return None
    except Undecided:
        return None
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(key_blob).digest()).decode().rstrip("=")
    principal = keys.get(key_blob)
    return Signature("G", fingerprint, "", principal) if principal else Signature("U", fingerprint, "", "")


# git's reading of gpg's status lines (gpg-interface.c, parse_gpg_output) and of ssh-keygen's output (parse_ssh_output)
GPG_RESULTS = {"GOODSIG": "G", "BADSIG": "B", "ERRSIG": "E", "EXPSIG": "X", "EXPKEYSIG": "Y", "REVKEYSIG": "R"}
GPG_TRUSTED = ("TRUST_MARGINAL", "TRUST_FULLY", "TRUST_ULTIMATE")  # below these git's %G? says U, not G


def _gpg_status(out: str) -> Signature:
    result, fingerprint, primary, signer, trusted, seen = "N", "", "", "", False, 0
    for line in out.splitlines():
        words = line.split(" ")
        if words[0] != "[GNUPG:]" or len(words) < 2:
            continue
        word = words[1]
        if word in GPG_RESULTS:
            seen += 1
            result = "E" if seen > 1 else GPG_RESULTS[word]
            signer = " ".join(words[3:]) if word != "ERRSIG" else ""
        elif word == "VALIDSIG" and len(words) > 2:
            fingerprint = words[2]
            primary = words[11] if len(words) > 11 else ""
        elif word.startswith("TRUST_"):
            trusted = word in GPG_TRUSTED
    if result == "G" and not trusted:
        result = "U"
    return Signature(result, fingerprint, primary, signer)


def _ssh_output(out: str) -> Signature:
    first = out.split("\n", 1)[0]
    for prefix, status in (('Good "git" signature for ', "G"), ('Good "git" signature with ', "U")):
        if first.startswith(prefix) and " key " in first:
            rest = first[len(prefix):]
            signer = rest[:rest.rindex(" with ")] if status == "G" and " with " in rest else ""
            return Signature(status, first[first.index(" key ") + 5:].strip(), "", signer)
    return Signature("B", "", "", "")


def tag_signature_by_git(root: Path, tag: str, pinned: Pinned, armored: bytes) -> Signature:
    """git's verdict on a signed tag object (`git verify-tag --raw`, which runs ssh-keygen or gpg), read as git reads
    that output for a commit's %G?, %GF, %GP and %GS; E when neither could say anything."""
    with _allowed_signers_file(pinned) as path:
        p = subprocess.run(["git", "-c", f"gpg.ssh.allowedSignersFile={path}", "verify-tag", "--raw", tag],
                           cwd=root, capture_output=True, text=True)
    if armored.startswith(SSH_ARMOR):
        return _ssh_output(p.stderr)
    return _gpg_status(p.stderr) if "[GNUPG:]" in p.stderr else Signature("E", "", "", "")


def tag_signature(root: Path, tag_object_sha: str, pinned: Pinned, *, blobs: BlobReader | None = None) -> Signature:
    """The verdict on an annotated tag's signature, with the meaning of a commit's `%G?`, `%GF`, `%GP`, `%GS`
    (`signature`): the signed payload is the tag object up to its signature block. SSH signatures are checked in
    this process when `ssh_verdict` can, everything else by `git verify-tag`."""
    raw = _raw(root, tag_object_sha, blobs)
    if raw is None:
        return Signature("E", "", "", "")  # no such object here
    payload, armored = split_tag(raw) if raw.startswith(b"object ") else (raw, None)  # a commit: a lightweight tag
    if armored is None:
        return N
    sig = ssh_verdict(payload, armored, pinned) if in_process() else None
    return sig or tag_signature_by_git(root, tag_object_sha, pinned, armored)
