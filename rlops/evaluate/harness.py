"""The `evaluate` stage: lm-eval's simple_evaluate on the in-memory model, one run per model, same settings.

Writes results.json (mean and standard error per suite.metric) and samples.jsonl (every item's answer and
scores, which the gate pairs by item id): both hold only what the evaluation decides, so the same evaluation gives
the same bytes and a re-run at a merge reproduces the digests in dvc.lock. Wall-clock time and whether the cache
answered go to timings.json beside them, which dvc.yaml does not declare and git ignores.

A model already evaluated on the same suites with the same settings is not evaluated again: rlops/evaluate/cache.py
(the key, the entries in `.rlops/eval-cache/`, their checks).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from rlops import layout, settings
from rlops.evaluate import cache, lmeval_tasks, refusal_judge
from rlops.evaluate.suites import load_suite, task_config
from rlops.io import atomic_write_bytes, atomic_write_json, atomic_write_lines
from rlops.train.runtime import Runtime


class EvalParams(settings.EvaluateSettings):
    """The `evaluate` section of params.yaml, typed (declared in rlops/settings.py)."""

    @classmethod
    def from_mapping(cls, m: dict[str, Any]) -> "EvalParams":
        return settings.read(cls, m, "evaluate", hint="run `rlops plan` again; set values in the spec's "
                                                       "evaluate.overrides")


def summarize(items: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, standard error and n for each suite.metric over item rows."""
    by_key: dict[str, list[float]] = {}
    for it in items:
        for m, v in it["scores"].items():
            by_key.setdefault(f"{it['suite']}.{m}", []).append(v)
    out = {}
    for key, vals in sorted(by_key.items()):
        n = len(vals)
        mean = sum(vals) / n
        var = sum((v - mean) ** 2 for v in vals) / (n - 1) if n > 1 else 0.0
        out[key] = {"mean": round(mean, 6), "stderr": round(math.sqrt(var / n), 6), "n": n}
    return out


def evaluate(params: dict[str, Any], root: Path, which: str, model_dir: Path, out_dir: Path) -> dict[str, Any]:
    # bad params and suites fail here, before the heavy imports
    ev = EvalParams.from_mapping(params["evaluate"])
    rt = Runtime.from_mapping(params["runtime"])
    suites = [load_suite(root, ev.suites_dir, name) for name in ev.suites]
    judge = refusal_judge.build(ev.refusal_judge, root)  # a bad judge setting fails before the heavy imports
    tasks = [task_config(s, ev.max_new_tokens, judge.graders() if judge else None) for s in suites]
    lmeval_tasks.include_path(root, ev.lm_eval_include_path)  # a bad folder fails before the heavy imports

    started = time.time()
    key = cache.key(params, model_dir, suites)
    cache.ensure_folder(root, which)
    entry, passed = cache.lookup(root, key, (which, *(w for w in layout.MODELS if w != which)))
    for why in passed:
        print(f"evaluate {which}: cache entry not used: {why}", flush=True)
    if entry is not None:
        return reuse(root, which, entry, key, out_dir, started)
    print(f"evaluate {which}: cache miss (key {key.short}): running lm-eval", flush=True)

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    manager = lmeval_tasks.task_manager(root, ev)
    named = lmeval_tasks.load(ev.lm_eval_tasks, manager)  # an unknown task or unreachable data fails before the model loads
    rt.apply()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=rt.torch_dtype()).to(rt.device)
    print(f"evaluate {which}: {', '.join(s.name for s in suites)} on {rt.device} ({rt.precision})", flush=True)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=ev.batch_size, device=rt.device)
    res = lm_eval.simple_evaluate(
        model=lm,
        tasks=[*tasks, *ev.lm_eval_tasks],
        task_manager=manager,
        limit=ev.limit,
        log_samples=True,
        apply_chat_template=ev.chat_template,
        system_instruction=params["policy"]["system_prompt"] if ev.chat_template else None,
        bootstrap_iters=0,  # the gate computes paired bootstrap intervals itself
        random_seed=int(params["seed"]),
        numpy_random_seed=int(params["seed"]),
        torch_random_seed=int(params["seed"]),
        fewshot_random_seed=int(params["seed"]),
    )
    items = []
    for s in suites:
        for sample in res["samples"][f"rlops_{s.name}"]:
            items.append({
                "suite": s.name,
                "id": sample["doc"].get("id", sample["doc_hash"]),
                "doc_hash": sample["doc_hash"],
                "prompt": sample["doc"]["prompt"],
                "response": sample["filtered_resps"][0],
                "scores": {m: float(sample[m]) for m in s.metrics},
            })
    items += lmeval_tasks.items(res, named)
    items.sort(key=lambda it: (it["suite"], it["id"]))
    summary = {"model": which, "metrics": summarize(items)}  # no wall-clock figure: see timings.json
    summary["settings"] = lmeval_tasks.record(suites, ev, params, rt.device, rt.precision)
    atomic_write_lines(out_dir / "samples.jsonl", (json.dumps(it, ensure_ascii=False, sort_keys=True) for it in items))
    atomic_write_json(out_dir / "results.json", summary)
    stored = cache.store(root, which, key, out_dir)
    _timings(root, which, started, {"cache": "miss", "key": key.digest, "stored": stored.relative_to(root).as_posix()})
    _print_metrics(which, summary)
    return summary


def reuse(root: Path, which: str, entry: Path, key: cache.Key, out_dir: Path, started: float) -> dict[str, Any]:
    """A cache hit: the entry's samples and results become this model's, byte for byte (results name `which`)."""
    summary = json.loads((entry / "results.json").read_text(encoding="utf-8"))
    summary["model"] = which
    atomic_write_bytes(out_dir / "samples.jsonl", (entry / "samples.jsonl").read_bytes())
    atomic_write_json(out_dir / "results.json", summary)
    where = entry.relative_to(root).as_posix()
    ing = key.ingredients
    print(f"evaluate {which}: cache hit: reused samples.jsonl and results.json from {where} (model "
          f"{ing['model'][:12]}, suites {', '.join(s['name'] for s in ing['suites'])}, lm-eval "
          f"{ing['versions'].get('lm_eval')}); lm-eval not run", flush=True)
    _timings(root, which, started, {"cache": "hit", "key": key.digest, "reused": where})
    _print_metrics(which, summary)
    return summary


def _timings(root: Path, which: str, started: float, extra: dict[str, Any]) -> None:
    # beside the results, undeclared in dvc.yaml and ignored by git: a duration never changes an evaluation's digest
    atomic_write_json(root / layout.timings(which), {"model": which, "seconds": round(time.time() - started, 1), **extra})


def _print_metrics(which: str, summary: dict[str, Any]) -> None:
    for name, v in summary["metrics"].items():
        print(f"evaluate {which}: {name} = {v['mean']:.3f} ± {v['stderr']:.3f} (n={v['n']})", flush=True)
