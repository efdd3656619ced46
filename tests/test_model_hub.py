"""`model.source: hub`: a Hub id pinned to a commit, read through huggingface_hub's cache.

No hub is reachable here, so the cache is pre-filled the way huggingface_hub lays it out
(`models--ORG--NAME/snapshots/<commit>/`, `refs/main`) with a tiny model built in the test, and every process runs
with HF_HUB_OFFLINE=1 and HF_HUB_CACHE pointed at it: the base stage reads it through the real huggingface_hub.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run

SPEC = "specs/cycles/0001-damaged-orders.yaml"
REPO_ID = "rlops-test/tiny-llama"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_conf(repo: Path, revision: str = COMMIT, repo_id: str = REPO_ID, extra: str = "") -> None:
    (repo / "pipelines/conf/model/tiny-hub.yaml").write_text(
        f"name: tiny-hub\nsource: hub\nrepo_id: {repo_id}\nrevision: {revision}\n{extra}tokenizer: {{source: hub}}\n")


def test_plan_refuses_a_branch_for_revision_with_the_fix_unless_allowed(project):
    repo, env = project
    hub_conf(repo, revision="main", repo_id="not an id")
    p = run(["rlops", "plan", SPEC, "model=tiny-hub"], repo, env, check=False)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "model.revision: 'main' is not a commit hash (40 hex digits)" in p.stderr
    assert "or set allow_unpinned: true" in p.stderr
    assert "model.repo_id: 'not an id' is not a Hub id" in p.stderr  # every problem at once
    assert "Traceback" not in p.stderr
    hub_conf(repo, revision="main", extra="allow_unpinned: true\n")
    run(["rlops", "plan", SPEC, "model=tiny-hub"], repo, env)


def fill_cache(cache: Path) -> Path:
    """A tiny Llama and a word-level tokenizer in huggingface_hub's cache layout; returns the snapshot folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = "hello order refund damaged parcel thanks sorry please number the a is was".split()
    vocab = {t: i for i, t in enumerate(["<pad>", "<unk>", "<s>", "</s>", *words])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                  eos_token="</s>")
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    folder = cache / f"models--{REPO_ID.replace('/', '--')}"
    snap = folder / "snapshots" / COMMIT
    LlamaForCausalLM(config).save_pretrained(snap, safe_serialization=True)
    tok.save_pretrained(snap)
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    return snap


@pytest.mark.slow
def test_base_stage_reads_a_pinned_snapshot_from_the_cache_offline_and_names_a_missing_one(project, tmp_path):
    from safetensors.torch import load_file

    from rlops.train.checkpoints import weights_digest

    repo, env = project
    snap = fill_cache(tmp_path / "hf-cache")
    env = env | {"HF_HUB_CACHE": str(tmp_path / "hf-cache"), "HF_HUB_OFFLINE": "1"}
    hub_conf(repo)
    run(["rlops", "plan", SPEC, "model=tiny-hub"], repo, env)
    out = run(["dvc", "repro", "base"], repo, env)
    assert "base: building model 'tiny-hub' from hub" in out.stdout
    base = repo / "artifacts/base/model"
    summary = json.loads((base / "rlops-model.json").read_text())
    assert (summary["source"], summary["repo_id"], summary["revision"]) == ("hub", REPO_ID, COMMIT)
    ours, theirs = load_file(base / "model.safetensors"), load_file(snap / "model.safetensors")
    assert ours.keys() == theirs.keys() and all((ours[k] == theirs[k]).all() for k in ours)
    assert weights_digest(base) == weights_digest(snap)  # the digest the train metrics record is the Hub weights'

    # another commit is not in the cache: offline, the stage says how to fetch it, with no traceback
    missing = "f" * 40
    m = {"name": "x", "source": "hub", "repo_id": REPO_ID, "revision": missing}
    p = subprocess.run([sys.executable, "-c", "import sys; from rlops.cli import report_errors; from rlops.train.hub "
                        f"import snapshot; sys.exit(report_errors(lambda: snapshot({m!r}), prog='base'))"],
                       cwd=repo, env=env, text=True, capture_output=True)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert f"{REPO_ID} at revision {missing} is not in the Hugging Face cache" in p.stderr
    assert f"hf download {REPO_ID} --revision {missing}" in p.stderr
