"""The evaluation cache: a model evaluated once on the same suites with the same settings is never evaluated again.

An entry is `.rlops/eval-cache/<which>/<key>/` holding the evaluation's `samples.jsonl` and `results.json` and an
`entry.json` that names what the key was made of and the SHA-256 of both files. The key is the SHA-256 of:

- the model: every file of the model folder (relative path and SHA-256), so other weights are another key;
- the suites: each suite's name, its suite.yaml and its data file, byte for byte (an edited item is another key);
- the evaluation settings that change an answer or a score: params.yaml's `evaluate` section (without
  `suites_dir`, whose contents are hashed instead), `runtime.device` and `runtime.precision`, `seed`, and
  `policy.system_prompt` when prompts go through the chat template;
- the versions of lm-eval, transformers and torch;
- the grader code: every module of `rlops/evaluate` (the metrics, the task config, the writer) and the module of
  each metric the suites name, and FORMAT below.

`.rlops/eval-cache/${key}` is a `persist: true` output of dvc.yaml's evaluate stage (one folder per foreach key), so
DVC keeps it between runs, records it in dvc.lock, `dvc push` sends it to the remote and `dvc pull` brings it back
in a fresh clone. The incumbent's stage looks in both folders: the candidate that a merge promotes is the next
cycle's incumbent. A hit copies the two files, prints what it reused and from where, and never imports lm-eval.
An entry is only used when its `entry.json` parses, names the same ingredients and both files match their digests;
entries are written with `atomic_dir`, so a killed write leaves no entry.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rlops import layout
from rlops.io import atomic_dir

FORMAT = 1  # bump when an entry's files change shape
FILES = ("samples.jsonl", "results.json")
PACKAGES = ("lm_eval", "transformers", "torch")


def folder(which: str) -> str:
    """The cache folder one evaluate stage writes (dvc.yaml: `.rlops/eval-cache/${key}`, persist)."""
    return layout.eval_cache(which)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(path: Path) -> str:
    """SHA-256 over a folder's files (relative POSIX path and content digest, sorted)."""
    files = sorted(p for p in path.rglob("*") if p.is_file())
    lines = [f"{p.relative_to(path).as_posix()}\0{sha256_file(p)}" for p in files]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def grader_digest(metric_names: list[str]) -> str:
    """SHA-256 of the code that turns answers into scores: rlops/evaluate/*.py and each named metric's module."""
    import inspect

    from rlops import components

    here = Path(__file__).resolve().parent
    files = set(here.glob("*.py"))
    for name in metric_names:
        source = inspect.getsourcefile(components.get("metric", name).function)
        if source:
            files.add(Path(source).resolve())
    lines = [f"{p.name}\0{sha256_file(p)}" for p in sorted(files)]
    return hashlib.sha256("\n".join([f"format {FORMAT}", *lines]).encode()).hexdigest()


@dataclass(frozen=True)
class Key:
    digest: str
    ingredients: dict[str, Any]

    @property
    def short(self) -> str:
        return self.digest[:12]


def key(params: dict[str, Any], model_dir: Path, suites: list[Any]) -> Key:
    """The cache key of evaluating `model_dir` on `suites` (rlops.evaluate.suites.Suite) under params.yaml."""
    ev = dict(params["evaluate"])
    ev.pop("suites_dir", None)
    rt = params.get("runtime") or {}
    settings: dict[str, Any] = {"evaluate": ev, "device": rt.get("device", "cpu"),
                                "precision": rt.get("precision", "fp32"), "seed": params.get("seed")}
    if ev.get("chat_template", True):
        settings["system_prompt"] = (params.get("policy") or {}).get("system_prompt")
    metric_names = sorted({m for s in suites for m in s.metrics})
    ingredients = {
        "format": FORMAT,
        "model": tree_digest(model_dir),
        "suites": [{"name": s.name, "suite": sha256_file(s.data.parent / "suite.yaml"), "data": sha256_file(s.data)}
                   for s in suites],
        "settings": settings,
        "versions": {p: _version(p) for p in PACKAGES},
        "graders": grader_digest(metric_names),
    }
    text = json.dumps(ingredients, sort_keys=True, separators=(",", ":"))
    return Key(hashlib.sha256(text.encode()).hexdigest(), ingredients)


def _check(entry: Path, k: Key) -> str | None:
    """Why the entry at `entry` cannot be used for `k`, or None when it can."""
    try:
        meta = json.loads((entry / "entry.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "entry.json is missing"
    except (OSError, ValueError) as e:
        return f"entry.json is unreadable ({e})"
    if not isinstance(meta, dict) or meta.get("key") != k.digest or meta.get("ingredients") != k.ingredients:
        return "entry.json names another key"
    for name in FILES:
        path = entry / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256_file(path) != (meta.get("files") or {}).get(name):
            return f"{name} does not match its recorded SHA-256"
    return None


def lookup(root: Path, k: Key, order: tuple[str, ...]) -> tuple[Path | None, list[str]]:
    """The first usable entry for `k` in the folders of `order` (relative to root), and why others were passed over."""
    passed: list[str] = []
    for which in order:
        entry = root / folder(which) / k.digest
        if not entry.exists():
            continue
        why = _check(entry, k)
        if why is None:
            return entry, passed
        passed.append(f"{entry.relative_to(root).as_posix()}: {why}")
    return None, passed


def store(root: Path, which: str, k: Key, out_dir: Path) -> Path:
    """Copy the evaluation in `out_dir` into the cache as `.rlops/eval-cache/<which>/<key>/`, atomically."""
    target = root / folder(which) / k.digest
    with atomic_dir(target) as tmp:
        files = {}
        for name in FILES:
            shutil.copyfile(out_dir / name, tmp / name)
            files[name] = sha256_file(tmp / name)
        meta = {"key": k.digest, "ingredients": k.ingredients, "files": files, "written_by": which}
        (tmp / "entry.json").write_text(json.dumps(meta, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    return target


def ensure_folder(root: Path, which: str) -> None:
    """The stage's persisted output exists even before its first entry (DVC requires every output to exist)."""
    (root / folder(which)).mkdir(parents=True, exist_ok=True)
