"""The evaluation cache (rlops/evaluate/cache.py) and reproducible evaluation outputs.

The key and entry checks run on real suite files and a model folder of plain files; the flow runs real DVC and
real lm-eval on the tiny random model: timings out of results.json, the same bytes twice, hit, damaged entry,
a fresh clone that pulls the cache from a local DVC remote, and a changed suite that misses.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run

from rlops import layout
from rlops.evaluate import cache
from rlops.evaluate.suites import load_suite

SPEC = "specs/cycles/0001-damaged-orders.yaml"
SMALL = ["model=tiny", "evaluate.limit=2", "evaluate.max_new_tokens=4"]


@pytest.fixture
def world(tmp_path: Path):
    """A copy of the example suites, a model folder of plain files and params.yaml as read by the stage."""
    shutil.copytree(ROOT / "specs/evals", tmp_path / "specs/evals")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights-1")
    (model / "config.json").write_text("{}")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return tmp_path, model, params


def suites(root: Path, params: dict) -> list:
    return [load_suite(root, params["evaluate"]["suites_dir"], n) for n in params["evaluate"]["suites"]]


def evaluation(folder: Path, text: str = '{"id": "a"}\n') -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "samples.jsonl").write_text(text)
    (folder / "results.json").write_text('{"metrics": {}, "model": "incumbent"}\n')
    return folder


def test_the_key_follows_model_suites_settings_and_graders_but_not_the_launcher(world):
    root, model, params = world
    base = cache.key(params, model, suites(root, params))
    assert base == cache.key(copy.deepcopy(params), model, suites(root, params))  # deterministic

    changed = copy.deepcopy(params)
    changed["runtime"]["launcher"] = "accelerate launch"
    changed["runtime"]["threads"] = 3
    changed["cycle"]["number"] = 99  # another cycle with the same incumbent and evaluation
    assert cache.key(changed, model, suites(root, params)).digest == base.digest

    keys = {base.digest}
    for path, value in ((("evaluate", "limit"), 5), (("evaluate", "max_new_tokens"), 7), (("runtime", "precision"), "bf16"),
                        (("runtime", "device"), "cuda"), (("seed",), 1), (("policy", "system_prompt"), "Be brief.")):
        p = copy.deepcopy(params)
        *parents, last = path
        target = p
        for name in parents:
            target = target[name]
        target[last] = value
        keys.add(cache.key(p, model, suites(root, p)).digest)
    assert len(keys) == 7, "each evaluation setting is part of the key"

    (model / "model.safetensors").write_bytes(b"weights-2")  # other weights
    keys.add(cache.key(params, model, suites(root, params)).digest)
    assert len(keys) == 8

    data = root / "specs/evals/heldout/prompts.jsonl"  # one suite item edited
    lines = data.read_text().splitlines()
    lines[0] = lines[0].replace("shattered", "cracked")
    data.write_text("\n".join(lines) + "\n")
    k = cache.key(params, model, suites(root, params))
    assert k.digest not in keys
    assert [s["name"] for s in k.ingredients["suites"]] == params["evaluate"]["suites"]
    assert k.ingredients["versions"]["lm_eval"]  # the installed lm-eval's version is part of it


def test_the_key_follows_the_grader_code(world, monkeypatch):
    root, model, params = world
    before = cache.key(params, model, suites(root, params)).digest
    monkeypatch.setattr(cache, "FORMAT", cache.FORMAT + 1)
    assert cache.key(params, model, suites(root, params)).digest != before
    monkeypatch.undo()
    real = cache.sha256_file
    grader = Path(cache.__file__).with_name("metrics.py").resolve()
    monkeypatch.setattr(cache, "sha256_file", lambda p: "edited" if Path(p).resolve() == grader else real(p))
    assert cache.key(params, model, suites(root, params)).digest != before


def test_store_then_lookup_hits_and_a_damaged_or_partial_entry_is_never_used(world):
    root, model, params = world
    k = cache.key(params, model, suites(root, params))
    assert cache.lookup(root, k, ("incumbent", "candidate")) == (None, [])

    entry = cache.store(root, "candidate", k, evaluation(root / "out"))
    assert entry == root / ".rlops/eval-cache/candidate" / k.digest
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")], "no temporary left behind"
    assert cache.lookup(root, k, ("incumbent", "candidate")) == (entry, [])  # the candidate's entry serves
    assert (entry / "samples.jsonl").read_bytes() == (root / "out/samples.jsonl").read_bytes()

    # the model's own folder is looked at first
    own = cache.store(root, "incumbent", k, evaluation(root / "out"))
    assert cache.lookup(root, k, ("incumbent", "candidate"))[0] == own

    (own / "samples.jsonl").write_text('{"id": "b"}\n')  # damaged
    found, passed = cache.lookup(root, k, ("incumbent", "candidate"))
    assert found == entry and passed == [f".rlops/eval-cache/incumbent/{k.digest}: samples.jsonl does not match its "
                                         "recorded SHA-256"]
    (entry / "entry.json").unlink()  # partial: the files without the record of what they are
    assert cache.lookup(root, k, ("incumbent", "candidate"))[0] is None
    meta = json.loads((own / "entry.json").read_text())
    meta["ingredients"]["settings"]["seed"] = 12345  # an entry whose record names other ingredients
    (own / "entry.json").write_text(json.dumps(meta))
    found, passed = cache.lookup(root, k, ("incumbent",))
    assert found is None and passed == [f".rlops/eval-cache/incumbent/{k.digest}: entry.json names another key"]


def test_a_failed_store_leaves_no_entry(world):
    root, model, params = world
    k = cache.key(params, model, suites(root, params))
    out = evaluation(root / "out")
    (out / "results.json").unlink()  # the copy fails halfway, after samples.jsonl
    with pytest.raises(FileNotFoundError):
        cache.store(root, "incumbent", k, out)
    assert list((root / ".rlops/eval-cache/incumbent").iterdir()) == []


def _evaluation_bytes(repo: Path) -> dict[str, bytes]:
    return {n: (repo / layout.EVALUATE / "incumbent" / n).read_bytes() for n in ("samples.jsonl", "results.json")}


def _lock_digests(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    outs = lock["stages"]["evaluate@incumbent"]["outs"]
    return {o["path"]: o["md5"] for o in outs if o["path"].startswith(layout.EVALUATE)}


@pytest.mark.slow
def test_the_incumbent_is_evaluated_once_even_in_a_fresh_clone(project, tmp_path):
    repo, env = project
    run(["rlops", "plan", SPEC, *SMALL], repo, env)
    first = run(["dvc", "repro", "evaluate@incumbent"], repo, env)
    assert "evaluate incumbent: cache miss" in first.stdout, first.stdout
    results = json.loads((repo / layout.results("incumbent")).read_text())
    assert "seconds" not in results and "metrics" in results  # no wall-clock figure in the evidence
    timings = json.loads((repo / layout.timings("incumbent")).read_text())
    assert timings["cache"] == "miss" and timings["seconds"] >= 0
    assert run(["git", "check-ignore", "-q", layout.timings("incumbent")], repo, env, check=False).returncode == 0
    evaluated, digests = _evaluation_bytes(repo), _lock_digests(repo)
    (entry,) = (repo / ".rlops/eval-cache/incumbent").iterdir()

    # evaluated again from scratch (no cache): the same bytes, so the digests dvc.lock recorded are reproduced
    shutil.rmtree(repo / ".rlops/eval-cache")
    again = run(["dvc", "repro", "-f", "-s", "evaluate@incumbent"], repo, env)
    assert "cache miss" in again.stdout and _evaluation_bytes(repo) == evaluated and _lock_digests(repo) == digests

    # a forced re-run hits the cache: it says what it reused and from where, and runs no lm-eval
    hit = run(["dvc", "repro", "-f", "-s", "evaluate@incumbent"], repo, env)
    assert (f"evaluate incumbent: cache hit: reused samples.jsonl and results.json from "
            f".rlops/eval-cache/incumbent/{entry.name}") in hit.stdout, hit.stdout
    assert "running lm-eval" not in hit.stdout and _evaluation_bytes(repo) == evaluated
    assert json.loads((repo / layout.timings("incumbent")).read_text())["cache"] == "hit"

    # the cache travels through the DVC remote: commit, push, clone, pull, and the clone's run is a hit
    remote = tmp_path / "dvc-remote"
    run(["dvc", "remote", "add", "-d", "shared", str(remote)], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", "cycle with the incumbent evaluated"], repo, env)
    run(["dvc", "push"], repo, env)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    assert not (clone / ".rlops/eval-cache/incumbent").exists()
    run(["dvc", "pull", "base", "evaluate@incumbent"], clone, env)  # the stages this cycle ran
    reused = run(["dvc", "repro", "-f", "-s", "evaluate@incumbent"], clone, env)
    assert f"cache hit: reused samples.jsonl and results.json from .rlops/eval-cache/incumbent/{entry.name}" \
        in reused.stdout, reused.stdout
    assert _evaluation_bytes(clone) == evaluated
    assert run(["git", "status", "--porcelain", "--", layout.EVALUATE], clone, env).stdout == ""

    # a changed suite invalidates the cache: dvc re-runs the stage, the key differs, lm-eval runs
    data = clone / "specs/evals/heldout/prompts.jsonl"
    data.write_text(data.read_text().replace("shattered", "cracked", 1))
    changed = run(["dvc", "repro", "evaluate@incumbent"], clone, env)
    assert "evaluate incumbent: cache miss" in changed.stdout and "cache hit" not in changed.stdout, changed.stdout
    assert len(list((clone / ".rlops/eval-cache/incumbent").iterdir())) == 2  # the old entry is kept for the old suite
