"""A scratch copy of the project for a benchmark: the files a cycle needs, committed in a fresh git repository, so a
benchmark's `rlops plan` and `dvc repro` never touch the developer's checkout (shared by the benchmark scripts)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ["specs", "pipelines", "data", "rlops", "dvc.yaml", "params.yaml", ".dvc/config", ".gitignore"]


def copy_project(repo: Path, env: dict[str, str]) -> Path:
    """Copy COPY from the checkout into `repo` and commit it there; returns `repo`."""
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=bench", "-c", "user.email=b@b", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    return repo
