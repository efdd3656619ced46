"""Issue 12 (part 2): the reward model, GRPO and RLOO with weighted reward functions chosen by name, online
preference tuning; refused at plan time when a reward function or judge is wrong.

The training tests use real TRL on a tiny random Llama with the demo's tokenizer, built by the base stage's own code
(its `initializer_range` raised so its next-token distributions are peaked, as a trained model's are, and a few
optimizer steps can move them); they compare the policy before and after on the same prompts with fixed seeds.
The HTTP judge talks to a real server on 127.0.0.1 (tests/test_judges.py's FakeServer, a stand-in for a hosted
judge endpoint, which cannot exist here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from rlops.cli import main
from rlops.extract import judges
from rlops.train import methods, rewards, rl
from tests.test_judges import FakeServer

ROOT = Path(__file__).resolve().parent.parent
SPEC = "specs/cycles/0001-damaged-orders.yaml"
USER = [{"role": "user", "content": "My mug arrived broken, order NW-55120."}]


def reply(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


# ---- the reward registry and plan-time checks (light) ------------------------------------------------------------

def train_problems(train: dict, signals=("edit", "pairwise", "rating")) -> dict[str, str]:
    found: dict[str, str] = {}
    methods.problems({"train": train, "extract": {"signals": list(signals)}},
                     lambda path, message: found.setdefault(".".join(map(str, path)), message))
    return found


def test_the_reward_functions_are_registered_by_name_and_the_rl_methods_too():
    from rlops import components

    assert components.names("reward") == ["reward_model", "judge", "rubric"]
    assert {"reward", "grpo", "rloo", "online_dpo"} <= set(methods.names())
    assert methods.get("grpo").sets == ("prompts",) and methods.get("reward").sets == ("pairs",)


@pytest.mark.parametrize("entry, field, words", [
    ({"name": "reward_modle", "weight": 1.0, "path": "m"}, "train.rewards",
     ["[0].name: 'reward_modle' is not a registered reward function", "reward_model, judge, rubric"]),
    ({"name": "rubric", "rubric": "no-such-rubric"}, "train.rewards",
     ["[0].rubric", "'no-such-rubric' is not a registered rubric", "support-quality"]),
    ({"name": "judge", "weight": 0.5}, "train.rewards", ["[0].judge: missing"]),
    ({"name": "judge", "judge": {"type": "oracle"}}, "train.rewards", ["judge.type 'oracle' is not a judge type", "http"]),
    ({"name": "judge", "judge": {"type": "http", "model": "j"}}, "train.rewards", ["judge.url: missing"]),
    ({"name": "rubric", "rubric": "support-quality", "weight": "high"}, "train.rewards", ["[0].weight: must be a number"]),
    ({"name": "reward_model", "path": "../elsewhere"}, "train.rewards", ["points outside the repository"]),
])
def test_plan_refuses_a_reward_function_that_is_unknown_or_wrongly_set(entry, field, words):
    from rlops import settings

    train = {**settings.defaults(methods.get("grpo").settings), "rewards": [entry]}
    found = train_problems(train)
    assert field in found, found
    for w in words:
        assert w in found[field], found[field]


def test_plan_refuses_an_online_judge_that_is_missing_and_groups_that_do_not_fill_a_batch():
    from rlops import settings

    online = {**settings.defaults(methods.get("online_dpo").settings),
              "judge": {"type": "transformers", "model": "artifacts/no-judge-here"}}
    assert "is not a model folder" in train_problems(online)["train.judge"]
    grpo = {**settings.defaults(methods.get("grpo").settings), "num_generations": 3}
    assert "must be a multiple of num_generations (3)" in train_problems(grpo)["train"]
    assert train_problems({**settings.defaults(methods.get("grpo").settings)}) == {}


def test_rlops_plan_refuses_an_unregistered_reward_in_the_spec_with_its_line(project, capsys):
    repo, _ = project
    spec = repo / SPEC
    spec.write_text(spec.read_text().replace(
        "method: dpo\n  overrides: {beta: 0.1, max_steps: 24}",
        "method: grpo\n  overrides:\n    rewards: [{name: vibes, weight: 1.0}]"))
    before = (repo / "params.yaml").read_text()
    assert main(["plan", "--root", str(repo), SPEC]) == 2
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(spec.read_text().splitlines(), 1) if "vibes" in t)
    assert re.search(rf"{SPEC}:{line}: train\.overrides\.rewards", err), err
    assert "'vibes' is not a registered reward function" in err and "Traceback" not in err
    assert (repo / "params.yaml").read_text() == before


# ---- the prompts set and the reward functions ---------------------------------------------------------------------

def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_prompts_set_takes_each_prompt_once_from_every_set_with_the_liked_reply(tmp_path):
    other = [{"role": "user", "content": "Where is my parcel?"}]
    third = [{"role": "user", "content": "Hello"}]
    write_jsonl(tmp_path / "artifacts/extract/pairs.jsonl",
                [{"prompt": USER, "chosen": reply("sorry, a replacement"), "rejected": reply("ok"), "meta": {}}])
    write_jsonl(tmp_path / "artifacts/extract/unpaired.jsonl",
                [{"prompt": USER, "completion": reply("meh"), "label": True, "meta": {}},
                 {"prompt": other, "completion": reply("bad"), "label": False, "meta": {}}])
    write_jsonl(tmp_path / "artifacts/extract/rewards.jsonl",
                [{"prompt": third, "completion": reply("hi"), "reward": 0.2, "meta": {}},
                 {"prompt": third, "completion": reply("hello, how can I help?"), "reward": 0.9, "meta": {}}])
    write_jsonl(tmp_path / "artifacts/extract/sft.jsonl", [{"messages": [*other, *reply("It ships today."), ], "meta": {}}])
    rows = rl.read_prompts(tmp_path, {"extract": {"format": "jsonl"}})
    assert [r["prompt"] for r in rows] == [USER, other, third]
    assert [r["reference"] for r in rows] == [reply("sorry, a replacement"), reply("It ships today."),
                                              reply("hello, how can I help?")]


class Ctx:  # what a reward builder reads of the train context
    def __init__(self, root: Path):
        self.root = root


def test_a_rubric_reward_scores_each_completion_with_the_registered_rubric():
    fn, = rewards.build([{"name": "rubric", "weight": 2.0, "rubric": "support-quality"}], Ctx(ROOT))[0]
    good, rude = reply("I am so sorry your mug arrived broken; we will send a replacement for order NW-55120 today."), \
        reply("Not our problem, read the manual.")
    scores = fn([USER, USER], [good, rude])
    assert scores == [judges.support_quality(USER, good), judges.support_quality(USER, rude)] and scores[0] > scores[1]
    assert fn.__name__ == "rubric"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    s = FakeServer()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_a_judge_reward_asks_an_http_judge_in_both_orders_against_the_logged_reply(server):
    # the fake judge prefers whichever answer offers a replacement, wherever it is shown; a biased one always says 1
    server.decide = lambda body: "1" if "replacement" in body["messages"][-1]["content"].split("Answer 2:")[0] else "2"
    entry = {"name": "judge", "weight": 1.0, "judge": {"type": "http", "url": server.url, "model": "judge-1",
                                                       "retry_backoff_s": 0}}
    (fn,), weights = rewards.build([entry], Ctx(ROOT))
    logged = reply("We can look into it.")
    logged_good = reply("A replacement ships today.")
    better, worse = reply("Sorry! A replacement is on its way."), reply("ok")
    assert fn([USER, USER, USER], [better, worse, better], reference=[logged, logged_good, []]) == [1.0, 0.0, 0.5]
    assert len(server.requests) == 4  # two completions with a reference, each judged in both orders
    shown = [tuple("replacement" in a for a in server.answers_shown(i)) for i in range(2)]
    assert shown == [(True, False), (False, True)]  # the completion first, then the logged reply first
    server.decide = lambda body: "1"  # position bias: an order-dependent verdict is a tie
    assert fn([USER], [better], reference=[logged]) == [0.5] and weights == [1.0]


# ---- training on the tiny model (real TRL) ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A repository root holding artifacts/base/model: the tiny Llama, with peaked next-token distributions."""
    from rlops.train.parent import materialize

    model = yaml.safe_load((ROOT / "pipelines/conf/model/tiny.yaml").read_text())
    model["config"]["initializer_range"] = 0.5
    root = tmp_path_factory.mktemp("rl-repo")
    materialize({"model": model, "seed": 0}, ROOT, root / "artifacts/base/model")
    return root


def context(root: Path, method: str, out: str, **overrides):
    """The train stage's context for `method` with its conf defaults and `overrides`, on the tiny model."""
    from rlops import settings
    from rlops.train.common import TrainContext
    from rlops.train.runtime import Runtime

    m = methods.get(method)
    typed = m.settings.model_validate({**settings.defaults(m.settings), **overrides})
    params = {"model": {"name": "tiny"}, "seed": 0, "extract": {"format": "jsonl"}}
    rt = Runtime.model_validate({"device": "cpu", "precision": "fp32", "threads": None, "launcher": "python"})
    return TrainContext(params=params, root=root, settings=typed, runtime=rt, seed=0, start=root / "artifacts/base/model",
                        inputs={s: root / f for s, f in methods.input_files(m, params).items()}, out_dir=root / out)


TOPICS = ["mug", "lamp", "chair", "kettle", "phone case", "backpack", "desk", "blender", "scarf", "clock"]


def test_the_held_out_pairs_are_a_seeded_hash_of_each_pair_s_id():
    from rlops.train import reward

    pairs = [{"prompt": USER, "chosen": reply(f"yes {i}"), "rejected": reply("no"), "meta": {"event_ids": [f"e{i}"]}}
             for i in range(200)]
    train, held = reward.split(pairs, 0.2, 0)
    assert 20 <= len(held) <= 60 and len(train) + len(held) == 200
    # the same pairs stay held out whatever else is in the set, and the id is the events, not the text
    assert reward.split(pairs[:100], 0.2, 0)[1] == [p for p in held if p in pairs[:100]]
    renamed = [{**p, "chosen": reply("edited")} for p in pairs]
    assert [p["meta"] for p in reward.split(renamed, 0.2, 0)[1]] == [p["meta"] for p in held]
    assert reward.split(pairs, 0.2, 1)[1] != held  # another seed, another split
    assert reward.split(pairs, 0.0, 0)[1] == []


@pytest.mark.slow
def test_a_reward_model_ranks_held_out_pairs_above_chance_and_grpo_can_use_it(tiny):
    from rlops.train import reward

    # a small task built for it: the chosen reply always apologises, the rejected one never does
    pairs = [{"prompt": [{"role": "user", "content": f"My {t} #{i} arrived late."}],
              "chosen": reply(f"So sorry about your {t}, sorry!"), "rejected": reply(f"Your {t} is fine, wait."),
              "meta": {"event_ids": [f"e{i}-{t}"]}} for i in range(6) for t in TOPICS]
    write_jsonl(tiny / "artifacts/extract/pairs.jsonl", pairs)
    ctx = context(tiny, "reward", "out-reward", max_steps=30, learning_rate=5e-3, per_device_train_batch_size=8,
                  max_length=64, eval_share=0.2)
    metrics = reward.run(ctx)
    train, held = reward.split(pairs, 0.2, 0)
    assert metrics["pairs_held_out"] == len(held) >= 6 and metrics["pairs_train"] == len(train)
    assert metrics["accuracy"] >= 0.8, metrics  # chance is 0.5
    assert json.loads((tiny / "out-reward/metrics.json").read_text()) == metrics
    # the merged model is the reward function reward_model reads (RLHF): it scores the held-out chosen replies higher
    (fn,), _ = rewards.build([{"name": "reward_model", "path": "out-reward/merged"}], ctx)
    chosen, rejected = fn([p["prompt"] for p in held], [p["chosen"] for p in held]), \
        fn([p["prompt"] for p in held], [p["rejected"] for p in held])
    assert sum(c > r for c, r in zip(chosen, rejected)) >= 0.8 * len(held)


# A reward the tiny model can learn: the share of an answer's tokens on one side of a fixed random direction in the
# model's embedding space (about half the vocabulary), so one direction of the last hidden state raises it.
_SIDE: dict[str, object] = {}


def side_share(prompt, answer) -> float:
    ids = _SIDE["tokenizer"](judges.message_text(answer[-1]), add_special_tokens=False)["input_ids"]
    return sum(i in _SIDE["ids"] for i in ids) / max(len(ids), 1)


@pytest.fixture(scope="module")
def side(tiny):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny / "artifacts/base/model")
    emb = model.get_input_embeddings().weight.detach()
    direction = torch.randn(emb.shape[1], generator=torch.Generator().manual_seed(0))
    _SIDE.update(ids=set(torch.nonzero(emb @ direction > 0).flatten().tolist()),
                 tokenizer=AutoTokenizer.from_pretrained(tiny / "artifacts/base/model"))
    judges.register_rubric("test-embedding-side")(side_share)
    prompts = [[{"role": "user", "content": f"Question {i} about my {t}."}] for i, t in enumerate(TOPICS[:8])]
    write_jsonl(tiny / "artifacts/extract/pairs.jsonl",
                [{"prompt": p, "chosen": reply("ok"), "rejected": reply("no"), "meta": {}} for p in prompts])
    return prompts


def mean_fresh_reward(folder: Path, prompts, n: int = 8, tokens: int = 8) -> float:
    """The mean side_share of `n` fresh samples per prompt from the model in `folder` (seeded)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlops.train.online_dpo import sample_answers

    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    answers = sample_answers(model, tokenizer, prompts, n, tokens, 1.0, seed=123)
    scores = [side_share(p, a) for p, group in zip(prompts, answers) for a in group]
    return sum(scores) / len(scores)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["grpo", "rloo"])
def test_on_policy_rl_raises_the_mean_reward_of_fresh_samples(tiny, side, method):
    ctx = context(tiny, method, f"out-{method}", max_steps=16, learning_rate=3e-2, per_device_train_batch_size=8,
                  num_generations=4, max_completion_length=8, beta=0.0,
                  rewards=[{"name": "rubric", "weight": 1.0, "rubric": "test-embedding-side"}])
    metrics = methods.get(method).function(ctx)
    before = mean_fresh_reward(tiny / "artifacts/base/model", side)
    after = mean_fresh_reward(tiny / f"out-{method}/merged", side)
    assert after > before + 0.04, (before, after, metrics)  # seeded: 512 fresh answers of 8 tokens each
    assert metrics["prompts"] == len(side) and metrics["reward_rubric"] is not None and metrics["reward_std"] is not None
    curve = (tiny / f"out-{method}/curve.csv").read_text().splitlines()
    assert curve[0].startswith("step,loss") and "reward" in curve[0].split(",") and len(curve) == 17


def judge_wins(judge, prompts, first: Path, second: Path) -> tuple[int, int]:
    """(how often the judge prefers `first`'s answer, how often `second`'s), both orders agreeing, 4 samples each."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlops.train.online_dpo import sample_answers

    def answers(folder: Path, seed: int):
        model = AutoModelForCausalLM.from_pretrained(folder)
        return sample_answers(model, AutoTokenizer.from_pretrained(folder), prompts, 4, 8, 1.0, seed)

    a, b = answers(first, 7), answers(second, 8)
    verdicts = [judges.judge_pair(judge, p, x, y).winner for p, xs, ys in zip(prompts, a, b) for x, y in zip(xs, ys)]
    return verdicts.count("a"), verdicts.count("b")


@pytest.mark.slow
def test_online_dpo_rounds_make_the_judge_prefer_the_new_policy_and_keep_every_round_s_pairs(tiny, side):
    from rlops.train.online_dpo import ROUNDS_DIR

    judge_config = {"type": "rubric", "rubric": "test-embedding-side", "tie_margin": 0.0}
    ctx = context(tiny, "online_dpo", "out-online", rounds=2, max_steps=8, learning_rate=2e-2,
                  per_device_train_batch_size=4, max_new_tokens=8, max_length=64, judge=judge_config)
    metrics = methods.get("online_dpo").function(ctx)
    judge = judges.build_judge(judge_config, ROOT)
    parent = tiny / "artifacts/base/model"
    new_wins, old_wins = judge_wins(judge, side, tiny / "out-online/merged", parent)
    same_a, same_b = judge_wins(judge, side, parent, parent)  # before: the parent against itself
    assert new_wins - old_wins > abs(same_a - same_b) and new_wins > old_wins, (new_wins, old_wins, same_a, same_b)
    # every round's judgments are kept beside the adapter: both verdicts, and the pair only where they agree
    for r in ("1", "2"):
        records = [json.loads(line) for line in
                   (tiny / "out-online/adapter" / ROUNDS_DIR / f"round-{r}.jsonl").read_text().splitlines()]
        assert len(records) == len(side)
        kept = [x for x in records if "chosen" in x]
        assert len(kept) == metrics["pairs_per_round"][r]
        for x in records:
            agree = (x["forward"], x["backward"]) in (("first", "second"), ("second", "first"))
            assert ("chosen" in x) == agree
            if agree:
                assert side_share(x["prompt"], x["chosen"]) > side_share(x["prompt"], x["rejected"])
    assert (tiny / "out-online/adapter/adapter_config.json").is_file()


# ---- each method through `rlops plan` + `dvc repro train` (all real) ------------------------------------------

REPRO = {
    "reward": "{max_steps: 2, max_length: 1024, per_device_train_batch_size: 2}",
    "grpo": "{max_steps: 2, max_prompts: 4, max_completion_length: 8, num_generations: 2, per_device_train_batch_size: 2,"
            " rewards: [{name: rubric, weight: 1.0, rubric: support-quality}]}",
    "rloo": "{max_steps: 2, max_prompts: 4, max_completion_length: 8, num_generations: 2, per_device_train_batch_size: 2}",
    "online_dpo": "{rounds: 2, max_steps: 1, max_prompts: 4, max_new_tokens: 8, max_length: 1024, "
                  "per_device_train_batch_size: 2, judge: {type: rubric, rubric: support-quality}}",
}


@pytest.mark.slow
def test_each_method_trains_through_dvc_repro(project):
    from tests.conftest import run

    repo, env = project
    spec = repo / SPEC
    original = spec.read_text()
    for method, overrides in REPRO.items():
        spec.write_text(original.replace("method: dpo\n  overrides: {beta: 0.1, max_steps: 24}",
                                         f"method: {method}\n  overrides: {overrides}"))
        run(["rlops", "plan", SPEC, "model=tiny"], repo, env)
        out = run(["dvc", "repro", "train"], repo, env)
        assert f"train: {method}" in out.stdout or f"train: {method.split('_')[0]}" in out.stdout, out.stdout[-2000:]
        metrics = json.loads((repo / "artifacts/train/metrics.json").read_text())
        assert metrics["method"] == method and metrics["steps"] >= 1
        assert (repo / "artifacts/train/merged/config.json").is_file()
        lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train"]
        assert any(o["path"] == "artifacts/train/adapter" for o in lock["outs"])
        if method == "reward":
            assert metrics["pairs_held_out"] + metrics["pairs_train"] == metrics["pairs"]
            assert json.loads((repo / "artifacts/train/merged/config.json").read_text())["architectures"] == \
                ["LlamaForSequenceClassification"]
        if method == "online_dpo":
            assert sorted(p.name for p in (repo / "artifacts/train/adapter/rounds").iterdir()) == \
                ["round-1.jsonl", "round-2.jsonl"]


def test_an_online_round_keeps_a_pair_only_when_both_orders_agree():
    from rlops.train.online_dpo import judge_round

    class Scripted:  # a judge that prefers "sorry", and one biased toward whatever is shown first
        name = "scripted"

        def __init__(self, biased: bool):
            self.biased = biased

        def prefer(self, prompt, first, second):
            if self.biased:
                return "first"
            a, b = ("sorry" in m[0]["content"] for m in (first, second))
            return "tie" if a == b else "first" if a else "second"

    answers = [[reply("ok"), reply("so sorry")], [reply("sorry"), reply("no")], [reply("x"), reply("y")]]
    records = judge_round(Scripted(False), [USER] * 3, answers)
    assert [(r["winner"], r.get("chosen")) for r in records] == [("b", reply("so sorry")), ("a", reply("sorry")),
                                                                 (None, None)]
    assert records[0]["rejected"] == reply("ok") and (records[0]["forward"], records[0]["backward"]) == ("second", "first")
    assert all("chosen" not in r for r in judge_round(Scripted(True), [USER] * 3, answers))


@pytest.mark.slow
def test_a_reward_then_grpo_recipe_trains_grpo_from_the_parent_with_the_step_s_reward_model(project):
    from tests.conftest import run

    repo, env = project
    spec = repo / SPEC
    spec.write_text(spec.read_text().replace("  method: dpo\n  overrides: {beta: 0.1, max_steps: 24}", """  steps:
    - {method: reward, overrides: {max_steps: 2, max_length: 1024, per_device_train_batch_size: 2}}
    - {method: grpo, overrides: {max_steps: 2, max_prompts: 4, max_completion_length: 8, num_generations: 2,
       per_device_train_batch_size: 2, rewards: [{name: reward_model, path: artifacts/train/steps/1-reward/merged}]}}"""))
    run(["rlops", "plan", SPEC, "model=tiny"], repo, env)
    run(["dvc", "repro", "train"], repo, env)
    recipe = json.loads((repo / "artifacts/train/steps/recipe.json").read_text())["steps"]
    assert [(s["method"], s["start"]) for s in recipe] == [("reward", "artifacts/base/model"),
                                                           ("grpo", "artifacts/base/model")]
    assert recipe[1]["metrics"]["reward_reward_model"] is not None
    config = json.loads((repo / "artifacts/train/merged/config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
