"""Docs cannot drift: the README's commands, exit codes and stage table match the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from rlops.cli import build_parser
from rlops.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_command_is_documented():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert re.search(rf"^rlops {name}\b", README, re.M), f"README does not document `rlops {name}`"


def test_exit_code_table_matches_the_code():
    documented = {int(c) for c in re.findall(r"^\| (\d+) \|", README, re.M)}
    assert documented == set(EXIT_CODES) - {130}


def test_stage_table_matches_dvc_yaml():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        if "foreach" in stage:  # over a literal mapping, or over params (`${data.sources}`: `inputs@<stream>-<n>`)
            keys = stage["foreach"] if isinstance(stage["foreach"], dict) else ["<stream>-<n>"]
            names = [f"{name}@{key}" for key in keys]
            params = stage["do"].get("params", [])
        else:
            names, params = [name], stage["params"]
        for n in names:
            row = next((l for l in README.splitlines() if l.startswith("|") and f"`{n}`" in l), None)
            assert row, f"README's stage table lacks {n}"
            assert row.split("|")[2].strip() == ", ".join(f"`{p}`" for p in params), (n, row)


def test_the_two_commands_and_ci_agree():
    assert "```bash\nmake demo\n```" in README and "```bash\nmake test\n```" in README
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_python_examples_run(tmp_path, monkeypatch):
    """Every ```python block of the README runs as written (in an empty folder)."""
    blocks = re.findall(r"^```python\n(.*?)^```", README, re.M | re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
