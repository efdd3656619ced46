"""`rlops propose`'s refusals that need no training: a test model, and telling what DVC itself left behind in the
working tree from a user's own unrelated changes. A real git repository, real `dvc plots show`."""

from __future__ import annotations

import shutil

import yaml
from conftest import run

from rlops.errors import EXIT_INVALID
from rlops.promotion.propose import dvc_outputs, preflight, unrelated_changes


def leftovers(repo, env) -> None:
    """What a failed `dvc repro` and `dvc plots show` leave: DVC removed artifacts/base/.gitignore (committed by the
    user) with the output it names, restored model files from its cache, and wrote dvc_plots/."""
    (repo / "artifacts/base").mkdir(parents=True)
    (repo / "artifacts/base/.gitignore").write_text("/model\n")
    run(["git", "add", "artifacts/base/.gitignore"], repo, env)
    run(["git", "commit", "-q", "-m", "DVC's ignore file"], repo, env)
    (repo / "artifacts/base/.gitignore").unlink()
    (repo / "artifacts/base/model").mkdir()
    (repo / "artifacts/base/model/config.json").write_text("{}\n")
    (repo / "artifacts/train/merged").mkdir(parents=True)
    (repo / "artifacts/train/merged/model.safetensors").write_bytes(b"\0" * 16)
    (repo / "artifacts/extract").mkdir(parents=True)
    (repo / "artifacts/extract/.gitignore").write_text("/pairs.jsonl\n")
    (repo / "artifacts/extract/pairs.jsonl").write_text("{}\n")
    (repo / "artifacts/train/curve.csv").write_text("step,loss,reward_margin,reward_accuracy\n1,0.7,0.1,0.5\n")
    run(["dvc", "plots", "show"], repo, env)
    assert (repo / "dvc_plots/index.html").is_file()


def test_what_dvc_left_behind_is_not_an_unrelated_change_but_the_users_own_changes_are(project):
    repo, env = project
    params = yaml.safe_load((repo / "params.yaml").read_text())
    outputs = dvc_outputs(repo, params)
    assert {"artifacts/base/model", "artifacts/extract/pairs.jsonl", "artifacts/evaluate/candidate/samples.jsonl",
            "artifacts/train/merged"} <= set(outputs)  # ${extract.format} and foreach ${key} resolved
    leftovers(repo, env)
    assert unrelated_changes(repo, params) == []

    (repo / "notes.txt").write_text("wip\n")
    (repo / ".gitignore").write_text((repo / ".gitignore").read_text() + "/scratch/\n")  # not beside a DVC output
    (repo / "artifacts/base/notes.md").write_text("mine\n")  # beside an output, not in it
    assert sorted(unrelated_changes(repo, params)) == [".gitignore", "artifacts/base/notes.md", "notes.txt"]


def test_a_refusal_names_the_command_that_sets_unrelated_changes_aside(project):
    repo, env = project
    params = yaml.safe_load((repo / "params.yaml").read_text())
    leftovers(repo, env)
    (repo / "notes.txt").write_text("wip\n")
    reasons = [msg for _, msg in preflight(repo, params)]
    mine = next(m for m in reasons if "unrelated to the cycle" in m)
    assert "unrelated to the cycle: notes.txt;" in mine
    assert "`git stash push --include-untracked -- notes.txt`" in mine and "git stash pop" in mine
    # DVC's leftovers are not called unrelated changes (`dvc status`'s own listing, another reason, may name outputs)
    assert "dvc_plots" not in mine and "artifacts/base" not in mine, mine
    # the command it names does the job
    run(["git", "stash", "push", "--include-untracked", "--", "notes.txt"], repo, env)
    assert unrelated_changes(repo, params) == []


def test_a_test_model_is_never_proposed(project):
    repo, env = project
    run(["rlops", "plan", "specs/cycles/0001-damaged-orders.yaml", "model=tiny"], repo, env)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["model"]["source"] == "random"
    code, message = preflight(repo, params)[0]
    assert code == EXIT_INVALID
    assert "test model (tiny-random-llama, model.source: random)" in message and "never proposed" in message
    p = run(["rlops", "propose", "--no-push"], repo, env, check=False)
    assert p.returncode == EXIT_INVALID and "a test model is never proposed" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert run(["git", "rev-parse", "--abbrev-ref", "HEAD"], repo, env).stdout.strip() == "main"  # nothing changed
    real = yaml.safe_load((repo / "params.yaml").read_text())
    real["model"]["source"] = "gguf"
    assert not any("test model" in m for _, m in preflight(repo, real))
    shutil.rmtree(repo / "artifacts", ignore_errors=True)
