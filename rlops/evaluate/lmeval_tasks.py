"""lm-eval tasks named in a spec (`evaluate.lm_eval_tasks`), run beside the suites, and the record of what ran.

A named task is lm-eval's own (its data must be reachable: no hub here, so a local copy or a mirror) or one in
`evaluate.lm_eval_include_path`, a folder of lm-eval task YAMLs in the repository. Such a folder may not bring code
(`!function`), as a suite may not. Every failure names the task and the fix, before any model is loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rlops.errors import InvalidInput, Problem, StageFailed


def include_path(root: Path, folder: str | None) -> Path | None:
    """The include folder, checked (light: no lm-eval import): it exists inside the root and brings no code."""
    if folder is None:
        return None
    path = (root / folder).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_dir():
        raise InvalidInput([Problem("params.yaml", None, "evaluate.lm_eval_include_path",
                                    f"'{folder}' is not a folder in the repository")],
                           hint="name a folder of lm-eval task YAMLs relative to the repository root")
    problems = [Problem(str(f.relative_to(root.resolve())), n, "", "an lm-eval `!function` brings code; a spec never does")
                for f in sorted(path.rglob("*.y*ml"))
                for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1) if "!function" in line]
    if problems:
        raise InvalidInput(problems, hint="use a built-in metric and plain Jinja templates, or an rlops suite")
    return path


def task_manager(root: Path, ev: Any):
    """lm-eval's TaskManager: the include folder alone when it has every named task (indexing lm-eval's own
    hundreds of tasks takes seconds), lm-eval's own tasks too when a named one is not there."""
    from lm_eval.tasks import TaskManager

    folder = include_path(root, ev.lm_eval_include_path)
    local = TaskManager(include_path=str(folder) if folder else None, include_defaults=False)
    if all(name in local.all_tasks for name in ev.lm_eval_tasks):
        return local
    return TaskManager(include_path=str(folder) if folder else None, include_defaults=True)


def load(names: list[str], manager: Any) -> list[str]:
    """The leaf tasks of the named tasks and groups, their data loaded once here so that an unknown task or
    unreachable data is a clear error naming the task (before any model loads)."""
    unknown = [n for n in names if n not in manager.all_tasks]
    if unknown:
        raise InvalidInput([Problem("params.yaml", None, "evaluate.lm_eval_tasks", f"unknown lm-eval task '{n}'")
                            for n in unknown],
                           hint="name a task lm-eval lists (`lm-eval ls tasks`) or one in evaluate.lm_eval_include_path")
    leaves: list[str] = []
    for name in names:
        try:
            leaves += [t for t in manager.load([name])["tasks"] if t not in leaves]
        except Exception as e:  # datasets raises many kinds: no network, no file, a bad split
            raise StageFailed(f"lm-eval task '{name}': its data could not be loaded: {type(e).__name__}: {e}",
                              hint="no model hub is reachable here: point the task's dataset_path/data_files at a "
                                   "local copy, or remove it from evaluate.lm_eval_tasks") from None
    return leaves


def items(res: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """Item rows (as the suites' rows) for the named tasks: one per document, its scores by the task's metrics."""
    rows = []
    for name in names:
        metrics = [m["metric"] for m in res["configs"][name].get("metric_list", []) if isinstance(m.get("metric"), str)]
        for sample in res["samples"][name]:
            response = sample["filtered_resps"][0] if sample.get("filtered_resps") else ""
            rows.append({
                "suite": name,
                "id": sample["doc_hash"],
                "doc_hash": sample["doc_hash"],
                "prompt": str(sample["arguments"][0][0]) if sample.get("arguments") else "",
                "response": response if isinstance(response, str) else repr(response),
                "scores": {m: float(sample[m]) for m in metrics if isinstance(sample.get(m), (int, float, bool))},
            })
    return rows


def suite_digest(suite: Any) -> str:
    """sha256 of a suite's suite.yaml and data file: a changed item or setting changes it."""
    h = hashlib.sha256()
    for path in (suite.data.parent / "suite.yaml", suite.data):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def record(suites: list[Any], ev: Any, params: dict[str, Any], device: str, precision: str) -> dict[str, Any]:
    """What an evaluation's scores depend on, for results.json: lm-eval's version, each suite's digest and
    generation settings, the chat template and system prompt, limit, seed, batch size, device and precision.
    No wall-clock figure: evaluating the same model again writes the same record."""
    from importlib.metadata import version

    system = params["policy"]["system_prompt"] if ev.chat_template else None
    return {
        "lm_eval": version("lm_eval"),
        "suites": {s.name: {"digest": suite_digest(s), "metrics": list(s.metrics),
                            "max_new_tokens": s.max_new_tokens or ev.max_new_tokens} for s in suites},
        "lm_eval_tasks": list(ev.lm_eval_tasks),
        "generation": {"do_sample": False, "batch_size": ev.batch_size},
        "chat_template": ev.chat_template,
        "system_prompt_sha256": hashlib.sha256(system.encode()).hexdigest() if system else None,
        "refusal_judge": ev.refusal_judge,  # its settings (a key is only ever named by api_key_env)
        "limit": ev.limit,
        "seed": int(params["seed"]),
        "runtime": {"device": device, "precision": precision},
    }
