"""The few git operations promotion and audit need, through the `git` command (what every CI runner has).

Plain subprocess calls rather than GitPython objects: each call is one process, its output is bytes we parse
ourselves, and `BlobReader` keeps one `git cat-file --batch` process open so that reading thousands of small
files from history costs one process, not thousands (audit verify stays linear in history length).
"""

from __future__ import annotations

import re
import subprocess
from collections import OrderedDict
from pathlib import Path

from rlops.errors import RlopsError


def parse_yaml_text(text: str | None):
    """yaml.safe_load, through libyaml's C parser when it is there (7x faster on the files verify reads per merge).

    The last texts parsed are remembered (as pickles, so every caller gets its own copy to change): verify reads a
    registry entry three times per promotion and the same policy and people files at every merge, and a copy costs a
    fortieth of a parse."""
    import pickle

    text = text or ""
    kept = _PARSED.get(text)
    if kept is None:
        import yaml

        kept = pickle.dumps(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        _PARSED[text] = kept
        if len(_PARSED) > 64:
            del _PARSED[next(iter(_PARSED))]
    return pickle.loads(kept)


_PARSED: dict[str, bytes] = {}


def git(root: Path, *args: str, check: bool = True, input: bytes | None = None) -> str:
    """Run `git args` in `root` and return its stdout as text; a failure names the command and git's message."""
    p = subprocess.run(["git", *args], cwd=root, input=input, capture_output=True)
    if check and p.returncode != 0:
        msg = p.stderr.decode(errors="replace").strip() or p.stdout.decode(errors="replace").strip()
        raise RlopsError(f"`git {' '.join(args)}` failed: {msg}", hint=f"is {root} a git repository with that history?")
    return p.stdout.decode("utf-8", errors="replace")


def rev(root: Path, ref: str) -> str | None:
    """The full commit id of `ref`, or None when it does not name a commit."""
    p = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=root, capture_output=True)
    return p.stdout.decode().strip() if p.returncode == 0 else None


def parents(root: Path, commit: str) -> list[str]:
    return git(root, "rev-list", "--parents", "-n", "1", commit).split()[1:]


def status_paths(root: Path) -> list[str]:
    """Paths with uncommitted changes or untracked (not ignored), relative to the repository root."""
    out = git(root, "status", "--porcelain", "-z", "--untracked-files=all")
    paths, entries = [], out.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        if entry:
            paths.append(entry[3:])
            if entry[0] in "RC":  # a rename is followed by its source path
                i += 1
        i += 1
    return paths


OBJECT_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def versions(root: Path, head: str, path: str) -> list[tuple[str, int | None]]:
    """(commit, size in bytes of `path` there, None when deleted) for each first-parent commit that changes `path`,
    oldest first: one `git log --raw` and one `git cat-file --batch-check`, whatever the file's size (a `git log -p`
    would diff every version against the one before, quadratic in a file that only grows)."""
    out = git(root, "log", "--first-parent", "--diff-merges=first-parent", "--no-renames", "--raw", "--no-abbrev",
              "--reverse", "--format=%x01%H", head, "--", path)
    changes: list[tuple[str, str]] = []
    for chunk in out.split("\x01")[1:]:
        sha, _, rest = chunk.partition("\n")
        blob = next((line.split()[3] for line in rest.splitlines() if line.startswith(":")), "0" * 40)
        changes.append((sha, blob))
    wanted = "".join(f"{blob}\n" for _, blob in changes if set(blob) != {"0"})
    sizes = {}
    for line in git(root, "cat-file", "--batch-check", input=wanted.encode()).splitlines():
        words = line.split()
        if len(words) == 3:
            sizes[words[0]] = int(words[2])
    return [(sha, sizes.get(blob)) for sha, blob in changes]


class BlobReader:
    """Reads `rev:path` from the object store through one long-lived `git cat-file --batch` process.

    The last few small objects read by object id are kept: what `rev:path` names never changes, and audit verify reads a
    tenth of its objects twice within one promotion's checks (dvc.lock, verdict.json, the merge commit)."""

    RECENT, SMALL = 256, 1 << 20  # entries (the checks of one promotion read several files more than once), and
    # the largest object kept (bytes)

    def __init__(self, root: Path):
        self._proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=root, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._recent: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def read(self, rev: str, path: str = "") -> bytes | None:
        """The object's bytes, or None when `rev:path` does not exist."""
        key = (rev, path)
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key]
        data = self._read(f"{rev}:{path}" if path else rev)
        # only by object id (a ref moves), and never an absence: an object fetched or written later may fill it
        if data is not None and len(data) <= self.SMALL and OBJECT_ID.fullmatch(rev):
            self._recent[key] = data
            if len(self._recent) > self.RECENT:
                self._recent.popitem(last=False)
        return data

    def prefetch(self, commit: str, paths: list[str]) -> None:
        """Read `commit:path` for every path in one round trip (all requests written, then all answers read) into
        the recent objects, so the reads that follow cost no wait on git; `commit` must be an object id."""
        assert self._proc.stdin and self._proc.stdout
        wanted = [p for p in dict.fromkeys(paths) if (commit, p) not in self._recent and "\n" not in p][:self.RECENT // 2]
        if not OBJECT_ID.fullmatch(commit) or not wanted:
            return
        # a few KB of requests fit the pipe's buffer, so writing them all before reading cannot block
        self._proc.stdin.write(b"".join(f"{commit}:{p}\n".encode() for p in wanted))
        self._proc.stdin.flush()
        for p in wanted:
            data = self._answer()
            if data is not None and len(data) <= self.SMALL:
                self._recent[(commit, p)] = data
                if len(self._recent) > self.RECENT:
                    self._recent.popitem(last=False)

    def _read(self, name: str) -> bytes | None:
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(name.encode() + b"\n")
        self._proc.stdin.flush()
        return self._answer()

    def _answer(self) -> bytes | None:
        assert self._proc.stdout
        header = self._proc.stdout.readline().split()
        if len(header) < 3 or header[-1] == b"missing":
            return None
        data = self._proc.stdout.read(int(header[2]))
        self._proc.stdout.read(1)  # the newline after each object
        return data

    def text(self, rev: str, path: str = "") -> str | None:
        data = self.read(rev, path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def message(self, commit: str) -> str:
        """A commit's message (what follows the header, signature included, of the commit object)."""
        return (self.text(commit) or "").partition("\n\n")[2]

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait()

    def __enter__(self) -> "BlobReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
