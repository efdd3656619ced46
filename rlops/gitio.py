"""The few git operations promotion and audit need, through the `git` command (what every CI runner has).

Plain subprocess calls rather than GitPython objects: each call is one process, its output is bytes we parse
ourselves, and `BlobReader` keeps one `git cat-file --batch` process open so that reading thousands of small
files from history costs one process, not thousands (audit verify stays linear in history length).
"""

from __future__ import annotations

import subprocess
from collections import OrderedDict
from pathlib import Path

from rlops.errors import RlopsError


def load_yaml(text: str | None):
    """yaml.safe_load, through libyaml's C parser when it is there (7x faster on the files verify reads per merge)."""
    import yaml

    return yaml.load(text or "", Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


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


def appends(root: Path, head: str, path: str) -> list[tuple[str, list[str], str | None]]:
    """(commit, lines it appended, what else it did or None) for each first-parent commit that changes `path`,
    oldest first: one `git log -p -U0` process, linear in what was appended (a rewrite shows as removed lines)."""
    out = git(root, "log", "--first-parent", "--diff-merges=first-parent", "--no-renames", "--reverse", "-p", "-U0",
              "--format=%x01%H", head, "--", path)
    result: list[tuple[str, list[str], str | None]] = []
    count = 0
    for chunk in out.split("\x01")[1:]:
        sha, _, body = chunk.partition("\n")
        added: list[str] = []
        problem = None
        in_hunk = False
        for line in body.split("\n"):
            if line.startswith("@@"):
                in_hunk = True
                start, _, n = line.split()[1][1:].partition(",")  # -start[,count] of the old file
                if (n != "0" or int(start) != count) and problem is None:
                    problem = f"rewrites, removes or inserts lines of {path} (at line {start}): the file is append-only"
            elif not in_hunk:
                if line.startswith("deleted file"):
                    problem = f"deletes {path}"
            elif line.startswith("+"):
                added.append(line[1:])
            elif line.startswith("-"):
                problem = problem or f"rewrites, removes or inserts lines of {path}: the file is append-only"
                count -= 1
            elif line.startswith("\\"):
                problem = problem or f"leaves {path} without a final newline"
        count += len(added)
        result.append((sha, added, problem))
    return result


class BlobReader:
    """Reads `rev:path` from the object store through one long-lived `git cat-file --batch` process."""

    CACHE = 256  # recent objects kept: the checks of one promotion read several files more than once

    def __init__(self, root: Path):
        self._proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=root, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._recent: OrderedDict[str, bytes | None] = OrderedDict()

    def read(self, rev: str, path: str = "") -> bytes | None:
        """The object's bytes, or None when `rev:path` does not exist."""
        name = f"{rev}:{path}" if path else rev
        if name in self._recent:
            self._recent.move_to_end(name)
            return self._recent[name]
        data = self._read(name)
        self._recent[name] = data
        if len(self._recent) > self.CACHE:
            self._recent.popitem(last=False)
        return data

    def _read(self, name: str) -> bytes | None:
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(name.encode() + b"\n")
        self._proc.stdin.flush()
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
