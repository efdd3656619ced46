"""Issue 10 item 7: `feedback.interactions` and `feedback.feedback` take a list of files or folders, each a DVC
dependency of its own (the `inputs@<stream>-<n>` stages: DVC cannot template a list into a stage's deps)."""

from __future__ import annotations

import json
import re

import yaml
from conftest import run

from rlops.cli import main

SPEC = "specs/cycles/0001-damaged-orders.yaml"


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def split_logs(repo) -> tuple[int, int]:
    """The example interactions as one file and one folder; returns (lines in the file, lines in the folder)."""
    lines = (repo / "data/example/interactions.jsonl").read_text().splitlines(keepends=True)
    half = len(lines) // 2
    (repo / "data/a").mkdir()
    (repo / "data/a/interactions.jsonl").write_text("".join(lines[:half]))
    (repo / "data/b/week2").mkdir(parents=True)
    (repo / "data/b/week2/part-1.jsonl").write_text("".join(lines[half:]) + "this line is not JSON\n")
    spec = repo / SPEC
    spec.write_text(spec.read_text().replace("interactions: data/example/interactions.jsonl",
                                             "interactions: [data/a/interactions.jsonl, data/b]"))
    return half, len(lines) - half + 1


def test_a_list_of_files_and_folders_is_read_whole_and_each_is_a_dvc_dependency(project):
    repo, env = project
    first, second = split_logs(repo)
    run(["rlops", "validate", SPEC], repo, env)
    run(["rlops", "plan", SPEC, "model=tiny"], repo, env)
    data = yaml.safe_load((repo / "params.yaml").read_text())["data"]
    assert data["interactions"] == ["data/a/interactions.jsonl", "data/b"]
    assert data["sources"] == {"interactions-1": "data/a/interactions.jsonl", "interactions-2": "data/b",
                               "feedback-1": "data/example/feedback.jsonl"}

    out = run(["dvc", "repro", "extract"], repo, env).stdout
    assert ran(out) == {"inputs@interactions-1", "inputs@interactions-2", "inputs@feedback-1", "extract"}, out
    signals = json.loads((repo / "artifacts/extract/signals_detail.json").read_text())
    assert signals["sources"]["data/a/interactions.jsonl"]["read"] == first
    assert signals["sources"]["data/b/week2/part-1.jsonl"]["read"] == second
    assert signals["invariant"]["interactions"]["read"] == first + second
    quarantine = [json.loads(line) for line in (repo / "artifacts/extract/quarantine.jsonl").read_text().splitlines()]
    assert {"file": "data/b/week2/part-1.jsonl", "line": second} in [{k: q[k] for k in ("file", "line")} for q in quarantine]

    # a change to one listed folder re-runs its own inputs stage and extract, not the other paths' stages
    with (repo / "data/b/week2/part-1.jsonl").open("a") as f:
        f.write("{}\n")
    out = run(["dvc", "repro", "extract"], repo, env).stdout
    assert ran(out) == {"inputs@interactions-2", "extract"}, out
    assert run(["dvc", "repro", "extract"], repo, env).stdout.count("Running stage") == 0


def test_each_listed_path_is_checked_with_its_index(project, capsys):
    repo, _ = project
    spec = repo / SPEC
    spec.write_text(spec.read_text().replace("interactions: data/example/interactions.jsonl",
                                             "interactions: [data/example/interactions.jsonl, data/nope.jsonl, logs/*.jsonl]"))
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1) if "nope" in text)
    for command in ("validate", "plan"):
        assert main([command, "--root", str(repo), SPEC]) == 2
        text = "".join(capsys.readouterr())
        assert f"{SPEC}:{line}: feedback.interactions[1]: no such file: 'data/nope.jsonl'" in text
        assert f"{SPEC}:{line}: feedback.interactions[2]: 'logs/*.jsonl' is a glob" in text
    spec.write_text(spec.read_text().replace("[data/example/interactions.jsonl, data/nope.jsonl, logs/*.jsonl]", "[]"))
    assert main(["validate", "--root", str(repo), SPEC]) == 2
    assert "feedback.interactions: must not be empty" in capsys.readouterr().out


def test_a_log_path_given_on_the_command_line_is_checked_too(project, capsys):
    repo, _ = project
    assert main(["plan", "--root", str(repo), SPEC, "data.interactions=[data/example/interactions.jsonl,data/x.jsonl]"]) == 2
    assert "command line: data.interactions[1]: no such file: 'data/x.jsonl'" in capsys.readouterr().err
    assert main(["plan", "--root", str(repo), SPEC, "data.sources.feedback-1=x"]) == 2
    assert "data.sources.feedback-1: derived from data.interactions and data.feedback" in capsys.readouterr().err
