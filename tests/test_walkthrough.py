"""Issue 10: the README's walkthrough for a team's own logs ("Your own logs: a first cycle") runs as written.

The commands are read from the section's ```bash blocks and its spec from its ```yaml block, and run in order in a
fresh copy of the project with the tiny test model. Two things differ from a reader's run, each said where it is done:
the worked example's export (tests/data/import/langfuse) is copied into the project copy, which holds no tests/; and
the plan line gets the tiny model and a short run (TINY). Everything else is the README's text.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil

import pytest
import yaml
from conftest import ROOT, run

README = (ROOT / "README.md").read_text()
HEADING = "## Your own logs: a first cycle\n"
# the substitution on the plan line: the tiny random model, few steps, few items per suite (as test_pipeline_e2e.py)
TINY = ["model=tiny", "train.max_steps=4", "evaluate.limit=4", "evaluate.max_new_tokens=8"]
# what the walkthrough does, in order: a README edit that drops or reorders a step fails here first
STEPS = ["rlops import", "rlops validate", "rlops plan", "git add", "git commit", "dvc repro", "rlops status",
         "rlops verdict", "rlops history", "rlops propose"]


def section() -> str:
    assert README.count(HEADING) == 1, "README lacks its walkthrough section"
    return README.split(HEADING, 1)[1].split("\n## ", 1)[0]


def blocks() -> list[tuple[str, str]]:
    return re.findall(r"^```(bash|yaml)\n(.*?)^```", section(), re.M | re.S)


def commands() -> list[list[str]]:
    return [shlex.split(line) for kind, text in blocks() if kind == "bash"
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def spec_block() -> tuple[str, str]:
    """The spec the walkthrough writes: (its path, named on the block's first line as a comment; its text)."""
    (text,) = [text for kind, text in blocks() if kind == "yaml"]
    first = text.splitlines()[0]
    assert first.startswith("# specs/cycles/"), first
    return first[2:].strip(), text


def test_the_walkthrough_has_its_steps_in_order_and_names_what_it_imports():
    assert [" ".join(c[:2]) for c in commands()] == STEPS
    path, text = spec_block()
    spec = yaml.safe_load(text)
    assert re.fullmatch(rf"specs/cycles/{spec['cycle']:04d}-[a-z0-9-]+\.yaml", path)
    (plan,) = [c for c in commands() if c[:2] == ["rlops", "plan"]]
    assert plan[2] == path
    (imported,) = [c for c in commands() if c[:2] == ["rlops", "import"]]
    out = f"data/imported/{imported[2]}"
    assert spec["feedback"]["interactions"][-1] == f"{out}/interactions.jsonl"
    assert spec["feedback"]["feedback"][-1] == f"{out}/feedback.jsonl"


def test_a_chat_template_without_tool_calls_gets_them_as_text():
    """Imported agent logs carry assistant tool calls with null content; SmolLM2's template (the demo's and the tiny
    model's) reads only role and content and fails on them: the train stage writes the calls into the content."""
    from rlops.train.dpo import for_template
    from rlops.train.parent import load_tokenizer

    tokenizer = load_tokenizer(yaml.safe_load((ROOT / "pipelines/conf/model/tiny.yaml").read_text()), ROOT)
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_number": "NW-7"}'}}
    row = {"prompt": [{"role": "user", "content": "Where is NW-7?"},
                      {"role": "assistant", "content": None, "tool_calls": [call]},
                      {"role": "tool", "content": '{"status": "late"}', "tool_call_id": "call_1"}],
           "chosen": [{"role": "assistant", "content": "Sorry, NW-7 is late."}],
           "rejected": [{"role": "assistant", "content": "Wait."}]}
    with pytest.raises(Exception):  # noqa: B017  (jinja2's UndefinedError or a TypeError, by version)
        tokenizer.apply_chat_template(row["prompt"], tokenize=False)
    (fixed,) = for_template([row], tokenizer.chat_template)
    text = tokenizer.apply_chat_template(fixed["prompt"], tokenize=False)
    assert '<tool_call>\n{"name": "lookup_order", "arguments": {"order_number": "NW-7"}}\n</tool_call>' in text
    assert '{"status": "late"}' in text and fixed["chosen"] == row["chosen"]
    # a template that renders tool calls itself gets the rows unchanged
    assert for_template([row], "{% for m in messages %}{{ m.tool_calls }}{% endfor %}") == [row]


def test_each_log_path_s_inputs_manifest_is_dvc_s_own_output_for_propose():
    """`foreach: ${data.sources}` in dvc.yaml: propose resolves it from params.yaml, so the manifests the inputs stages
    write are not "unrelated changes". It matters when DVC wrote no .gitignore for them: after a `dvc repro` that
    failed part way (seen with the walkthrough before the tool-call fix), they stay untracked and unignored."""
    from rlops.registry.propose import dvc_leftover, dvc_outputs

    sources = {"interactions-1": "data/example/interactions.jsonl", "interactions-2": "data/imported/langfuse/interactions.jsonl",
               "feedback-1": "data/example/feedback.jsonl"}
    outputs = dvc_outputs(ROOT, {"data": {"sources": sources}})
    assert {f"artifacts/inputs/{key}.json" for key in sources} <= set(outputs)
    assert dvc_leftover("artifacts/inputs/interactions-2.json", outputs)
    assert not dvc_leftover("data/imported/langfuse/interactions.jsonl", outputs)


@pytest.mark.slow
def test_the_walkthrough_runs_as_the_readme_says(project):
    repo, env = project
    # the worked example's export, committed where the README's import command finds it in a clone
    shutil.copytree(ROOT / "tests/data/import/langfuse", repo / "tests/data/import/langfuse")
    run(["git", "add", "tests"], repo, env)
    run(["git", "commit", "-q", "-m", "the worked example's export, as a clone has it"], repo, env)
    path, text = spec_block()
    (repo / path).write_text(text)
    done: dict[str, object] = {}
    expected_exit = {"rlops verdict": None, "rlops propose": 2}  # verdict: 0 on pass, 4 on fail (checked below)
    for cmd in commands():
        step = " ".join(cmd[:2])
        if step == "rlops plan":
            cmd = [*cmd, *TINY]
        p = run(cmd, repo, env, check=False)
        want = expected_exit.get(step, 0)
        assert want is None or p.returncode == want, f"{shlex.join(cmd)} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        assert "Traceback" not in p.stderr, p.stderr
        done[step] = p

    out = repo / "data/imported/langfuse"
    # 1. import: the correction becomes an edit event, and the console says so
    events = [json.loads(line) for line in (out / "feedback.jsonl").read_text().splitlines()]
    edits = [e for e in events if e["kind"] == "edit"]
    assert [e["event_id"] for e in edits] == ["langfuse-score-corr-1"]
    assert f"edit {len(edits)}" in done["rlops import"].stdout
    assert f"quarantined   {len((out / 'quarantine.jsonl').read_text().splitlines())} " in done["rlops import"].stdout

    # 3. validate and plan accept the README's spec, and say so as the README says
    assert "rlops validate: ok (specs/)" in done["rlops validate"].stdout
    assert f"rlops plan: wrote params.yaml from {path}" in done["rlops plan"].stdout
    assert yaml.safe_load((repo / "params.yaml").read_text())["plan"]["spec"] == path

    # 4. repro: each listed path is a stage of its own; signals_detail counts the records of each file
    ran = set(re.findall(r"Running stage '([^']+)'", done["dvc repro"].stdout))
    assert {"inputs@interactions-1", "inputs@interactions-2", "inputs@feedback-1", "inputs@feedback-2", "gate"} <= ran
    sources = json.loads((repo / "artifacts/extract/signals_detail.json").read_text())["sources"]
    for name in ("interactions.jsonl", "feedback.jsonl"):
        lines = (out / name).read_text().splitlines()
        assert sources[f"data/imported/langfuse/{name}"] == {"read": len(lines), "quarantined": 0}
    # the correction is a training pair: the corrected answer over the original
    pairs = [json.loads(line) for line in (repo / "artifacts/extract/pairs.jsonl").read_text().splitlines()]
    (pair,) = [p for p in pairs if p["meta"]["event_ids"] == ["langfuse-score-corr-1"]]
    assert pair["meta"]["rule"] == "edit"
    assert pair["chosen"] == edits[0]["edit"]["output_messages"]
    metrics = json.loads((repo / "artifacts/train/metrics.json").read_text())
    assert metrics["pairs"] == len(pairs) and metrics["steps"] == 4

    verdict = json.loads((repo / "artifacts/gate/verdict.json").read_text())
    word = verdict["decision"].upper()
    status = done["rlops status"].stdout
    assert re.search(r"^plan: +current", status, re.M) and re.search(r"^stages: +up to date", status, re.M), status
    assert re.search(rf"^verdict: +{word}, current", status, re.M), status
    assert done["rlops verdict"].returncode == (0 if verdict["passed"] else 4)
    assert done["rlops verdict"].stdout.rstrip().endswith(f"verdict: {word}")
    for gate in verdict["gates"]:
        assert gate["metric"] in done["rlops verdict"].stdout
    (row,) = [line for line in done["rlops history"].stdout.splitlines() if line.startswith("0002 ")]
    assert "evaluated" in row and word in row and "heldout.rubric" in row, row

    # 5. propose: the tiny model is a test model, never proposed; the README's honest outcome is this refusal.
    # Nothing else is in its way: the imported logs and the spec are committed, DVC's own outputs are not "unrelated".
    refusal = done["rlops propose"].stderr
    assert "a test model is never proposed" in refusal, refusal
    assert "unrelated" not in refusal and "stale" not in refusal.lower(), refusal
    if verdict["uninformative"]:
        assert "uninformative" in refusal
    assert run(["git", "rev-parse", "--abbrev-ref", "HEAD"], repo, env).stdout.strip() == "main"
    assert run(["git", "branch", "--list", "cycle/*"], repo, env).stdout.strip() == ""
