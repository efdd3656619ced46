"""Tests build their own little world: a copy of the project in a temporary git repository with its own HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# what a cycle needs; the package itself is imported from the installed (editable) rlops
PROJECT_FILES = ["specs", "pipelines", "data", "deployments", "audit", "dvc.yaml", "params.yaml", ".dvc/config", ".gitignore",
                 "rlops"]


# Property tests: `ci` (the default, used by `make test`) is derandomized, so a run is repeatable and a failure
# reproduces; `long` draws fresh random examples, ten times as many as each test asks for, to hunt for new failures:
# `RLOPS_HYPOTHESIS=long pytest tests/test_extract_properties.py` (or `pytest --hypothesis-profile=long ...`).
LONG_FACTOR = 10
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("long", derandomize=False, print_blob=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("RLOPS_HYPOTHESIS", "ci"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under the `long` profile, each property test runs LONG_FACTOR times the examples its @settings names."""
    if settings.get_current_profile_name() != "long":
        return
    seen: set[int] = set()
    for item in items:
        test = getattr(item, "obj", None)
        chosen = getattr(test, "_hypothesis_internal_use_settings", None)
        if chosen is not None and id(test) not in seen:
            seen.add(id(test))
            test._hypothesis_internal_use_settings = settings(chosen, max_examples=chosen.max_examples * LONG_FACTOR)


def undocumented_fields(document: dict, name: str) -> list[str]:
    """Properties of a JSON Schema (under properties, items, then and $defs) that lack a title or a description."""
    found: list[str] = []

    def walk(node: dict, where: str) -> None:
        for key, sub in node.get("properties", {}).items():
            if not (sub.get("title") and sub.get("description")):
                found.append(f"{where}.{key}")
            walk(sub, f"{where}.{key}")
        for key in ("items", "then"):
            if isinstance(node.get(key), dict):
                walk(node[key], where)
        for key, sub in node.get("$defs", {}).items():
            walk(sub, f"$defs.{key}")

    walk(document, name)
    return found


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", GIT_CONFIG_NOSYSTEM="1",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout:\n{p.stdout[-4000:]}\nstderr:\n{p.stderr[-4000:]}")
    return p


@pytest.fixture
def project(tmp_path: Path):
    """A fresh git repository holding a copy of the project; returns (path, env)."""
    home = tmp_path / "home"
    home.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    env = env_for(home)
    run(["git", "init", "-q", "-b", "main"], repo, env)
    run(["git", "config", "user.email", "test@rlops.local"], repo, env)
    run(["git", "config", "user.name", "rlops test"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", "project"], repo, env)
    return repo, env
