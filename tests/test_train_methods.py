"""Each train method, real TRL on the tiny random model, moves the model the way it promises on a small task built
for it: the chosen (DPO), desirable (KTO) or target (SFT) answer's log-probability rises on held-out prompts that
no training row has. Plus: KTO's class weights, the curve, and outputs that are the same bytes in two checkouts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from rlops import layout
from rlops.train import methods
from rlops.train.common import TrainContext
from rlops.train.runtime import Runtime

SYSTEM = {"role": "system", "content": "You are the support assistant of a shop."}
ITEMS = ["teapot", "kettle", "lamp", "chair", "mirror", "clock", "vase", "rug", "desk", "shelf", "sofa", "bench",
         "jug", "bowl", "plate", "cup", "blanket", "pillow", "basket", "candle"]
TRAIN_ITEMS, HELD_OUT = ITEMS[:16], ITEMS[16:]
GOOD = "I am sorry. Please send me your order number and I will replace it."
BAD = "Not my problem."


def prompt(item: str) -> list[dict]:
    return [SYSTEM, {"role": "user", "content": f"My {item} arrived broken. What now?"}]


def answer(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def rows(method: str, items: list[str]) -> tuple[str, list[dict]]:
    """(the set the method reads, its rows for `items`)."""
    if method == "dpo":
        return "pairs", [{"prompt": prompt(i), "chosen": answer(GOOD), "rejected": answer(BAD)} for i in items]
    if method == "kto":  # more bad than good rows: the weights must balance them
        good = [{"prompt": prompt(i), "completion": answer(GOOD), "label": True} for i in items[:5]]
        return "unpaired", good + [{"prompt": prompt(i), "completion": answer(BAD), "label": False} for i in items]
    return "sft", [{"messages": prompt(i) + answer(GOOD)} for i in items]


@pytest.fixture(scope="module")
def parent(tmp_path_factory) -> Path:
    """The tiny random parent checkpoint, written by the base stage's own code."""
    from rlops.train.parent import materialize

    root = tmp_path_factory.mktemp("parent")
    model = yaml.safe_load((ROOT / "pipelines/conf/model/tiny.yaml").read_text())
    materialize({"model": model, "seed": 0}, ROOT, root / layout.BASE_MODEL)
    return root / layout.BASE_MODEL


def context(root: Path, parent: Path, method: str, **overrides) -> TrainContext:
    """A checkout at `root` with the parent in its place and the method's set written for TRAIN_ITEMS."""
    import shutil

    m = methods.get(method)
    start = root / layout.BASE_MODEL
    if not start.exists():
        shutil.copytree(parent, start)
    set_name, data = rows(method, TRAIN_ITEMS)
    path = root / layout.extract_set(set_name, "jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    values = {"learning_rate": 5e-3, "max_steps": 8, "per_device_train_batch_size": 4, "max_length": 96, **overrides}
    return TrainContext(params={"model": {"name": "tiny-random-llama"}}, root=root,
                        settings=m.settings.model_validate(values), runtime=Runtime(), seed=0, start=start,
                        inputs={set_name: path}, out_dir=root / layout.TRAIN)


def completion_logp(model_dir: Path, items: list[str], text: str) -> float:
    """Mean over `items` of log p(text | prompt) under the chat template, summed over the answer's tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    total = 0.0
    for item in items:
        head = tok.apply_chat_template(prompt(item), add_generation_prompt=True, tokenize=False)
        start = len(tok(head, add_special_tokens=False)["input_ids"])
        ids = tok(head + text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = model(torch.tensor([ids])).logits[0].log_softmax(-1)
        total += sum(float(logp[i - 1, ids[i]]) for i in range(start, len(ids)))
    return total / len(items)


@pytest.mark.slow
@pytest.mark.parametrize("method, overrides", [
    ("sft", {}),
    ("dpo", {}),
    ("dpo", {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5], "precompute_ref_log_probs": True}),
    ("kto", {}),
])
def test_the_update_raises_the_good_answer_on_held_out_prompts(tmp_path, parent, method, overrides):
    ctx = context(tmp_path, parent, method, **overrides)
    metrics = methods.get(method).function(ctx)
    merged = ctx.out_dir / "merged"
    before, after = completion_logp(parent, HELD_OUT, GOOD), completion_logp(merged, HELD_OUT, GOOD)
    assert after > before, f"{method}: log p(good answer) on held-out prompts {before:.3f} -> {after:.3f}"
    if method != "sft":  # preference methods also separate the bad answer from the good one
        margin = lambda d: completion_logp(d, HELD_OUT, GOOD) - completion_logp(d, HELD_OUT, BAD)  # noqa: E731
        assert margin(merged) > margin(parent)
    assert metrics["method"] == method and metrics["steps"] == 8
    curve = (ctx.out_dir / "curve.csv").read_text().splitlines()
    assert curve[0].startswith("step,loss,") and len(curve) == 1 + 8  # a row per logged step, every logged key
    adapter = json.loads((ctx.out_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == layout.BASE_MODEL  # relative: it holds in any checkout
    if method == "kto":  # 5 good and 16 bad rows: the rarer class is weighted up so the two weigh the same
        assert (metrics["desirable"], metrics["undesirable"]) == (5, 16)
        ratio = metrics["desirable_weight"] * 5 / (metrics["undesirable_weight"] * 16)
        assert 1 <= ratio <= 4 / 3


def test_kto_weights_balance_the_classes_either_way():
    from rlops.train.kto import balanced_weights

    for n_good, n_bad in ((5, 16), (16, 5), (7, 7), (1, 100), (39, 43), (43, 39), (3, 7)):
        good_w, bad_w = balanced_weights(n_good, n_bad)
        assert 1 <= good_w * n_good / (bad_w * n_bad) <= 4 / 3 and min(good_w, bad_w) == 1.0


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_two_checkouts_train_the_same_bytes(tmp_path, parent):
    """The train stage in two checkouts at different paths: every output DVC hashes is the same bytes (the adapter
    names its base by a relative path; the timings, which differ, live outside the outputs)."""
    from rlops.stages import train

    found = []
    for name in ("a", "checkout-b"):
        root = tmp_path / name
        ctx = context(root, parent, "dpo", max_steps=3)
        params = {"model": {"name": "tiny-random-llama"}, "seed": 0, "extract": {"format": "jsonl"},
                  "runtime": Runtime().model_dump(), "train": {**ctx.settings.model_dump(), "method": "dpo"}}
        train(root, params)
        assert json.loads((root / layout.TRAIN_TIMINGS).read_text())["seconds"] >= 0
        found.append({p: _digests(root / p) if (root / p).is_dir() else hashlib.sha256((root / p).read_bytes()).hexdigest()
                      for p in layout.stage_outputs(params)["train"]["outs"] + [layout.TRAIN_METRICS, layout.CURVE]})
        assert str(root) not in "".join((root / layout.ADAPTER / f).read_text() for f in ("README.md", "adapter_config.json"))
    assert found[0] == found[1]
