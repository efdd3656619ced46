"""BlobReader.prefetch: many `commit:path` reads in one round trip give exactly what one read at a time gives."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rlops.gitio import BlobReader


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo.parent), "PATH": "/usr/bin:/bin",
                               "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t"}).stdout


def test_prefetched_reads_equal_single_reads_and_absences_stay_absent(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    files = {"a.txt": b"alpha\n", "dir/b.bin": bytes(range(256)) * 40, "empty": b"", "c d.yaml": b"k: v\n"}
    for name, data in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "one")
    sha = _git(repo, "rev-parse", "HEAD").strip()
    wanted = [*files, "missing.txt", "a.txt", "dir"]  # a repeat, an absence and a tree
    with BlobReader(repo) as one:
        expected = {p: one.read(sha, p) for p in wanted}
    with BlobReader(repo) as many:
        many.prefetch(sha, wanted)
        (repo / "a.txt").write_bytes(b"changed in the work tree, not in the commit\n")
        assert {p: many.read(sha, p) for p in wanted} == expected
        assert many.read(sha, "missing.txt") is None and expected["a.txt"] == b"alpha\n"
        many.prefetch("HEAD", ["a.txt"])  # a ref, not an object id: nothing is kept for it
        assert ("HEAD", "a.txt") not in many._recent
        assert many.read("HEAD", "a.txt") == b"alpha\n"  # and the reader is still in step with git
