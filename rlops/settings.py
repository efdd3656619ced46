"""Every params section's settings, declared once: type, default, range and description in one pydantic model.

From these models come (`python -m rlops.regenerate` writes them; tests/test_settings.py fails on drift):

| model              | params section      | generated                                                                  |
|--------------------|---------------------|----------------------------------------------------------------------------|
| `ExtractSettings`  | `extract`           | `pipelines/conf/config.yaml`'s extract block, the cycle schema's `extract`, the README table |
| `EvaluateSettings` | `evaluate`          | `pipelines/conf/evaluate/default.yaml`, the README table                    |
| `TrainSettings`    | `train` (shared)    | each method's model (rlops/train/<method>.py): `pipelines/conf/method/<method>.yaml`, the README table |
| `RuntimeSettings`  | `runtime`           | the README table (the values differ per runtime file, so those are hand-written) |
| `BootstrapSettings`| `gate.bootstrap`    | `pipelines/conf/config.yaml`'s gate.bootstrap block, the README table       |
| `Window`           | `data.window`       | (the spec's feedback.window; checked by `rlops validate` and the extract stage) |

Pydantic, as the component registry (rlops/components.py) already chose: one model gives strict validation that
reports every field at once, the defaults and the JSON Schema. Light: pydantic and the standard library only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from rlops.components import Settings
from rlops.errors import InvalidInput, Problem

SIGNALS = ("edit", "pairwise", "ranking", "rating", "implicit", "outcome", "judge")
DEVICE_PATTERN = r"^(cpu|cuda|cuda:[0-9]+|mps)$"
TRACKERS = ("none", "mlflow", "tensorboard", "wandb")
ACCELERATE_DIR = "pipelines/conf/accelerate"  # the accelerate configs runtime.launcher may name
MEMORY_PATTERN = r"^[1-9][0-9]*(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
# TRL 1.16 DPOConfig.loss_type's documented values; tests/test_plan.py keeps this in sync with the installed trl.
DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")


# every params section's base is the components' settings base: strict types (no "1" for 1), no unknown keys, frozen
Section = Settings


# ---- extract ---------------------------------------------------------------------------------------------------

class ImplicitWeights(Section):
    regenerate: float = Field(0.5, ge=0, le=1, title="Regenerate", description="Weight of a pair from a regeneration.")
    copy_: float = Field(0.5, ge=0, le=1, alias="copy", title="Copy",
                         description="Weight of a good (label true) row from a copied reply.")
    abandon: float = Field(0.25, ge=0, le=1, title="Abandon",
                           description="Weight of a bad (label false) row from an abandoned conversation.")


class ExtractSettings(Section):
    """How feedback becomes training data: which rules run and how they are tuned, and the filters every row passes."""

    signals: list[Literal[SIGNALS]] = Field(  # type: ignore[valid-type]
        ["edit", "pairwise", "rating"], min_length=1, title="Rules", json_schema_extra={"uniqueItems": True},
        description="Which rules turn feedback into training rows: edit (the edited reply beats the original; an SFT "
                    "row too), pairwise (A/B choices), ranking (every pair of a ranking), rating (KTO labels, and "
                    "pairs of replies to one prompt rated far enough apart), implicit (regenerate and copy as weak, "
                    "down-weighted signals), outcome (a reward per interaction; success beats failure on one task), "
                    "judge (recorded judge scores like ratings, and the live judge of extract.judge).")
    rating_min_gap: float = Field(
        2, ge=0, title="Minimum rating gap",
        description="Two replies to the same prompt form a pair only when their ratings (on the same scale) differ "
                    "by at least this much; ties never pair.")
    edit_min_chars: int = Field(
        8, ge=0, title="Minimum edit size",
        description="Edits changing fewer characters than this (Levenshtein distance) are dropped as trivial (typo "
                    "fixes carry no preference).")
    decontaminate: bool = Field(
        True, title="Decontaminate",
        description="Drop rows whose prompt shares a normalised 13-word window with an item of any evaluation suite "
                    "(or contains a shorter item whole); reported per suite.")
    suites_dir: str = Field("specs/evals", min_length=1, title="Suites folder",
                            description="The evaluation suites decontamination reads, relative to the repository root.",
                            json_schema_extra={"spec": False})  # the conf's, not the spec's: evaluation reads it too
    edit_sft: bool = Field(
        True, title="SFT rows from edits",
        description="A kept edit also gives an SFT row: the prompt followed by the edited reply (sft.jsonl).")
    rating_good_min: float = Field(
        0.75, ge=0, le=1, title="Good rating threshold",
        description="A rating at or above this fraction of its scale is a good example (KTO label true), e.g. 0.75: "
                    "4 and 5 of 1-5.")
    rating_bad_max: float = Field(
        0.25, ge=0, le=1, title="Bad rating threshold",
        description="A rating at or below this fraction of its scale is a bad example (KTO label false); ratings "
                    "between the two thresholds give no label. Must be below rating_good_min.")
    max_pairs_per_prompt: int = Field(
        10, ge=1, title="Pairs per prompt",
        description="At most this many pairs from ratings, judge scores or outcomes per prompt (or task cluster), so "
                    "one popular prompt cannot dominate; the choice is deterministic.")
    implicit_weights: ImplicitWeights = Field(
        ImplicitWeights(), title="Implicit signal weights",
        description="The weight (meta.weight) of rows from implicit actions, between 0 and 1; 0 turns an action off. "
                    "regenerate: the regenerated reply beats the replaced one; copy: a weakly good reply; abandon: a "
                    "weakly bad one.")
    judge: dict[str, Any] = Field(
        {"type": "none", "max_pairs": 100, "min_gap": 0.25}, title="Judge",
        description="The live AI judge (RLAIF) for the judge rule, chosen by name under type (none: recorded judge "
                    "scores only), plus max_pairs and min_gap; its keys come from the judge registry.")
    agent_versions: Literal["all", "deployed"] | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] = Field(
        "all", title="Agent versions",
        description="Use feedback about replies of these agent versions only: all, deployed (the version the "
                    "cycle's parent is: base, or v3 for support-agent@v3), or a list such as [base, v3]. Coverage per "
                    "version is reported either way.")
    max_per_user: int | None = Field(
        None, ge=1, title="Events per user",
        description="At most this many feedback events per user (a deterministic pseudo-random choice), so one user "
                    "cannot dominate; null for no cap.")
    cap_by: Literal["actor", "user"] = Field(
        "actor", title="Who a user is",
        description="For max_per_user: actor (who gave the feedback) or user (the interaction's end user, else the "
                    "actor).")
    dedup: Literal["exact", "near", "off"] = Field(
        "near", title="Duplicates",
        description="exact: drop rows whose prompt and replies are the same up to case and whitespace; near: also "
                    "rows whose last user message and replies agree in the first 200 characters left of their first "
                    "300 once lowercased, every digit read as 0 and whitespace dropped; off: keep them.")
    pii: Literal["redact", "drop", "off"] = Field(
        "redact", title="PII",
        description="redact (replace e-mail addresses, phone numbers, card numbers that pass the Luhn check and IP "
                    "addresses with [EMAIL], [PHONE], [CARD], [IP] before anything is written), drop (drop the rows "
                    "that contain any) or off.")
    pii_tier: Literal["regex", "presidio"] = Field(
        "regex", title="PII tier",
        description="regex (fast, always on unless pii is off) or presidio (Microsoft Presidio's analyzer on top; "
                    "needs pip install presidio-analyzer).")
    format: Literal["jsonl", "parquet"] = Field(
        "jsonl", title="Output format",
        description="jsonl or parquet (smaller for large sets); the train stage reads either.")
    memory_limit: str = Field(
        "512MB", json_schema_extra={"pattern": MEMORY_PATTERN}, title="Memory limit",
        description="DuckDB's memory limit for the extract stage, e.g. 512MB; beyond it DuckDB spills to a scratch "
                    "folder.")
    threads: int | None = Field(None, ge=1, title="Threads",
                                description="DuckDB threads for the extract stage; null for all cores.")

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str) -> str:
        if not re.match(MEMORY_PATTERN, value):
            raise ValueError(f"must be a size such as 512MB or 2GB, not {value!r}")
        return value

    @field_validator("signals")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        twice = sorted({s for i, s in enumerate(value) if s in value[:i]})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed twice")
        return value

    @field_validator("rating_bad_max")
    @classmethod
    def _below_good(cls, value: float, info: ValidationInfo) -> float:
        good = info.data.get("rating_good_min")
        if good is not None and not value < good:
            raise cross_field(f"{value} must be below rating_good_min ({good}): ratings between them are dropped")
        return value


def cross_field(message: str) -> PydanticCustomError:
    """A problem between settings, which a JSON Schema cannot express: `rlops validate` reports these itself."""
    return PydanticCustomError("cross_field", message)


# ---- data ---------------------------------------------------------------------------------------------------------

class Window(Section):
    """Feedback events count when their date (UTC) is within [from, to], both days inclusive."""

    start: dt.date = Field(alias="from", description="The first day, YYYY-MM-DD.")
    end: dt.date = Field(alias="to", description="The last day, YYYY-MM-DD.")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _day(cls, value: Any) -> dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):  # a time makes "whole day" ambiguous
            return value
        try:
            return dt.date.fromisoformat(value) if isinstance(value, str) else None  # type: ignore[return-value]
        except ValueError:
            pass
        raise ValueError(f"must be a date YYYY-MM-DD, not {value!r}")

    @model_validator(mode="after")
    def _in_order(self) -> Window:
        if self.start > self.end:
            raise cross_field(f"the window starts ({self.start}) after it ends ({self.end}); swap from and to")
        return self

    def contains(self, when: dt.datetime) -> bool:
        return self.start <= when.astimezone(dt.timezone.utc).date() <= self.end


# ---- evaluate, train, runtime --------------------------------------------------------------------------------

class EvaluateSettings(Section):
    """lm-eval settings, identical for candidate and incumbent."""

    suites_dir: str = Field("specs/evals", min_length=1, description="Where the suites live, relative to the root.")
    suites: list[str] = Field(default_factory=list, description="The suites both models run (the spec's "
                              "evaluate.suites; not a default).", json_schema_extra={"generated": False})
    batch_size: int = Field(8, ge=1, description="Prompts per generation batch.")
    max_new_tokens: int = Field(64, ge=1, description="Answer length cap; a suite's own generation.max_new_tokens wins.")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N items of each suite (null = all).")
    chat_template: bool = Field(True, description="Prompts go through the model's chat template with the policy's "
                                                  "system prompt.")
    lm_eval_tasks: list[str] = Field(
        default_factory=list, description="lm-eval tasks run beside the suites, by name (set them in the spec's "
        "evaluate.overrides): lm-eval's own, whose data must be reachable, or ones in lm_eval_include_path; "
        "reported as <task>.<metric>.")
    refusal_judge: dict[str, Any] | None = Field(
        None, description="A classifier judge in place of the rule-based refusal grader (metrics safe, refused, "
        "refusal), configured as extract.judge: {type: transformers, model: PATH} or {type: http, url: URL, model: "
        "NAME}; null = the rules.")
    lm_eval_include_path: str | None = Field(
        None, min_length=1, description="A folder of lm-eval task YAMLs for lm_eval_tasks, relative to the root "
        "(no !function: a spec never brings code).")


class LoraSettings(Section):
    r: int = Field(8, ge=1, description="Rank of the adapters.")
    alpha: int = Field(16, ge=1, description="Scaling numerator (alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapters' input.")
    target_modules: str | list[str] = Field("all-linear", description="Which modules get adapters.")


class TrainSettings(Section):
    """The settings every train method shares (its own model, in rlops/train/<method>.py, adds the rest).

    Every field but `method`, `lora` and `trl` is a field of the method's TRL config class and passes into it by name
    (rlops/train/common.py `trl_config`); `trl` passes further keys of that class as they are."""

    NOT_TRL: ClassVar[tuple[str, ...]] = ("method", "lora", "trl")  # the fields rlops reads itself

    method: str = Field(description="The training method.")
    learning_rate: float = Field(1.0e-4, gt=0, description="LoRA adapters take a higher rate than full fine-tuning.")
    max_steps: int = Field(40, ge=1, description="Optimizer steps.")
    per_device_train_batch_size: int = Field(4, ge=1, description="Rows per device per step.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Batches accumulated per step.")
    max_length: int = Field(256, ge=1, description="Prompt + completion tokens.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    logging_steps: int = Field(1, ge=1, description="Steps between logged losses.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory.")
    lora: LoraSettings | None = Field(LoraSettings(), description="The LoRA adapters; null trains every weight (full "
                                                                    "fine-tune: lower learning_rate).")
    trl: dict[str, Any] = Field(
        {}, description="Further keys of the method's TRL config class, passed as they are (e.g. {lr_scheduler_type: "
                        "cosine}); `rlops plan` refuses a key that class does not have, or one rlops sets itself.")


class RuntimeSettings(Section):
    """Where training and evaluation run (pipelines/conf/runtime/<name>.yaml, chosen with `runtime=NAME`)."""

    device: str = Field("cpu", json_schema_extra={"pattern": DEVICE_PATTERN}, description="cpu, cuda, cuda:N or mps.")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="fp32, bf16 or fp16.")
    threads: int | None = Field(None, ge=1, description="Torch threads; null = torch's default.")
    launcher: str = Field(
        "python", min_length=1,
        description="How dvc.yaml starts the train stage: python (one process), or `accelerate launch --config_file "
                    f"{ACCELERATE_DIR}/NAME.yaml` (one of the presets there: cpu-ddp, ddp, fsdp2, deepspeed-zero3).")
    checkpoint_steps: int | None = Field(
        10, ge=1, description="Save a resumable checkpoint every N optimizer steps (under .rlops/checkpoints/, keyed "
                              "by the run's inputs); a killed train stage resumes from the last one on the next "
                              "`dvc repro`. null: no checkpoints.")
    report_to: Literal[TRACKERS] | list[Literal[TRACKERS]] = Field(  # type: ignore[valid-type]
        "none", description="Experiment trackers the trainer reports to (TRL's report_to): none, or mlflow, "
                            "tensorboard, wandb (one or a list); each needs its pip package.")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.match(DEVICE_PATTERN, value):
            raise ValueError(f"must be cpu, cuda, cuda:N or mps, not {value!r}")
        return value

    @field_validator("launcher")
    @classmethod
    def _launcher(cls, value: str) -> str:
        why = launcher_problem(value)
        if why:
            raise ValueError(why)
        return value

    @field_validator("report_to")
    @classmethod
    def _trackers(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and ("none" in value or len(set(value)) != len(value) or not value):
            raise ValueError(f"{value!r}: list each tracker once, without none (write report_to: none for no tracker)")
        return value


def launcher_problem(launcher: str) -> str | None:
    """Why `runtime.launcher` is not one the train stage can be started with, or None."""
    words = launcher.split()
    if words == ["python"]:
        return None
    if words[:2] != ["accelerate", "launch"]:
        return (f"{launcher!r} is not a launcher: use python, or `accelerate launch --config_file "
                f"{ACCELERATE_DIR}/NAME.yaml`")
    rest = words[2:]
    if "--config_file" not in rest:
        return f"{launcher!r}: name an accelerate config with --config_file {ACCELERATE_DIR}/NAME.yaml"
    i = rest.index("--config_file")
    config = rest[i + 1] if i + 1 < len(rest) else ""
    if not re.fullmatch(rf"{re.escape(ACCELERATE_DIR)}/[A-Za-z0-9_.-]+\.yaml", config):
        return (f"--config_file {config!r}: the accelerate config must be a file in {ACCELERATE_DIR}/ "
                f"(a path inside the repository, so the stage is reproducible): e.g. {ACCELERATE_DIR}/ddp.yaml")
    return None


COMMIT_PATTERN = r"^[0-9a-f]{40}$"
HUB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"


class HubModelSettings(Section):
    """A parent from the Hugging Face Hub (`model.source: hub` in pipelines/conf/model/NAME.yaml), read through the
    huggingface_hub cache (HF_HOME / HF_HUB_CACHE; with HF_HUB_OFFLINE=1 nothing is downloaded)."""

    name: str = Field(min_length=1, description="The model's name in reports and the registry.")
    source: Literal["hub"] = Field("hub", description="hub.")
    repo_id: str = Field(min_length=1, json_schema_extra={"pattern": HUB_ID_PATTERN},
                         description="The Hub id, org/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct.")
    allow_unpinned: bool = Field(False, description="Accept a branch or tag as revision (its commit can move: the "
                                                    "parent_digest in the train metrics still records what was used).")
    revision: str = Field(min_length=1, description="The commit (40 hex digits) to load, so the parent cannot change "
                                                    "under a cycle; a branch or tag only with allow_unpinned.")
    tokenizer: dict[str, Any] = Field({"source": "hub"}, description="{source: hub}: the tokenizer of the same "
                                                                     "snapshot; or a gguf/local tokenizer.")

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, value: str) -> str:
        if not re.match(HUB_ID_PATTERN, value):
            raise ValueError(f"{value!r} is not a Hub id: write org/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct")
        return value

    @field_validator("revision")
    @classmethod
    def _pinned(cls, value: str, info: ValidationInfo) -> str:
        if not info.data.get("allow_unpinned") and not re.match(COMMIT_PATTERN, value):
            repo = info.data.get("repo_id", "ORG/NAME")
            raise ValueError(f"{value!r} is not a commit hash (40 hex digits): a branch or tag can move, and the "
                             f"parent with it. Pin the commit (`hf download {repo} --revision {value}` prints the "
                             "snapshot folder, named by the commit), or set allow_unpinned: true")
        return value


class BootstrapSettings(Section):
    """The gate's paired bootstrap over evaluation items (`gate.bootstrap`); each gate rule's own settings are its
    component's model (rlops/gates/)."""

    samples: int = Field(2000, ge=1, description="Bootstrap resamples of the paired per-item differences.")
    confidence: float = Field(0.95, gt=0, lt=1, description="One-sided confidence of the bound a rule compares; "
                                                              "a gate's own confidence wins.")
    seed: int = Field(0, ge=0, description="Seed of the resampling, so a verdict is reproducible.")


# ---- validation -------------------------------------------------------------------------------------------------

def problems(model: type[Section], values: Any) -> list[tuple[tuple, str, str]]:
    """Every problem of `values` as `model`: (path inside the section, pydantic's error type, message)."""
    if not isinstance(values, Mapping):
        return [((), "mapping", f"must be a mapping, not {values!r}")]
    try:
        model.model_validate(dict(values))
        return []
    except ValidationError as e:
        return [(path(err["loc"]), err["type"], explain(err)) for err in e.errors()]


def check(model: type[Section], values: Any, file: str, prefix: str) -> tuple[Section | None, list[Problem]]:
    """`values` as `model`, or every problem, each named `prefix.field` in rlops' words."""
    found = problems(model, values)
    if found:
        return None, [Problem(file, None, field_name(prefix, loc), message) for loc, _, message in found]
    return model.model_validate(dict(values)), []


def read(model: type[Section], values: Any, section: str, hint: str) -> Any:
    """A params.yaml section as its typed model. Every key must be there (`rlops plan` writes each one from
    pipelines/conf, which is generated from the model): a missing key means a stale or hand-edited params.yaml."""
    found = [Problem("params.yaml", None, f"{section}.{k}", "missing") for k, f in model.model_fields.items()
             if isinstance(values, Mapping) and (f.alias or k) not in values]
    typed, wrong = check(model, values, "params.yaml", section)
    found += wrong
    if found:
        raise InvalidInput(sorted(found, key=lambda p: p.field), hint=hint)
    return typed


def path(loc: tuple) -> tuple:
    """pydantic's error location as a path of keys and indexes; the names of union branches it tried dropped."""
    return tuple(p for p in loc if isinstance(p, int) or not (p.startswith(("literal[", "list[", "int", "str",
                                                                              "float", "bool")) or "[" in p))


def field_name(prefix: str, loc: tuple) -> str:
    """A path as params writes it: ("signals", 1) under extract -> extract.signals[1]."""
    out = prefix
    for part in path(loc):
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def explain(err: Mapping[str, Any]) -> str:
    """One pydantic error as what is wrong and what would be right."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown setting; check its spelling against pipelines/conf/ and the README's settings tables"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = {"greater_than": "greater than", "greater_than_equal": "at least", "less_than": "less than",
                 "less_than_equal": "at most"}[kind]
        return f"must be {bound} {next(iter(ctx.values())):g}, not {value!r}"
    if kind.startswith("int_"):
        return f"must be a whole number, not {value!r}"
    if kind.startswith("float_"):
        return f"must be a number, not {value!r}"
    if kind.startswith("bool_"):
        return f"must be true or false, not {value!r}"
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not have the expected form ({ctx.get('pattern')})"
    if kind.startswith("string_"):
        return f"must be a non-empty string, not {value!r}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}, not {value!r}"
    if kind == "too_short":
        return f"must not be empty, not {value!r}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "cross_field":
        return err["msg"]
    return f"{err['msg']}, not {value!r}"


# ---- what is generated from the models ---------------------------------------------------------------------------

def defaults(model: type[Section]) -> dict[str, Any]:
    """The model's defaults as plain YAML values, in declaration order (aliases as written in YAML); a default is
    written as declared (2 stays 2 for a number field, so params.yaml does not change)."""
    dumped = model().model_dump(mode="json", by_alias=True)
    return {(f.alias or k): (f.default if isinstance(f.default, (int, float, str, bool, type(None))) else dumped[f.alias or k])
            for k, f in model.model_fields.items()}


def _generated(model: type[Section]) -> list[str]:
    return [k for k, f in model.model_fields.items()
            if (f.json_schema_extra or {}).get("generated", True)]


def _flow(value: Any) -> str:
    """A YAML value on one line (JSON is valid YAML flow; plain words are written bare)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.replace("-", "").replace("/", "").replace("_", "").isalnum() \
            and value not in ("true", "false", "null", "yes", "no", "on", "off"):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def yaml_block(model: type[Section], indent: str = "") -> str:
    """The model's defaults as YAML, each key after its description as a comment."""
    values = defaults(model)
    lines = []
    for name in _generated(model):
        field = model.model_fields[name]
        key = field.alias or name
        for line in textwrap.wrap(field.description or "", 116 - len(indent)):
            lines.append(f"{indent}# {line}")
        lines.append(f"{indent}{key}: {_flow(values[key])}")
    return "\n".join(lines) + "\n"


GENERATED_HEADER = "# Generated from rlops/settings.py by `python -m rlops.regenerate`; change the model, not this file.\n"


def conf_files() -> dict[str, str]:
    """{path under the repository: text} of the conf files generated whole."""
    return {
        "pipelines/conf/evaluate/default.yaml":
            GENERATED_HEADER + f"# {EvaluateSettings.__doc__}\n" + yaml_block(EvaluateSettings),
        **{f"pipelines/conf/method/{name}.yaml": "# @package train\n" + GENERATED_HEADER.replace(
            "rlops/settings.py", f"rlops/train/{name}.py") + f"# {model.__doc__.splitlines()[0]}\n" + yaml_block(model)
           for name, model in method_settings().items()},
    }


def method_settings() -> dict[str, type[Section]]:
    """Each train method's settings model, by name (the component registry's `method` kind)."""
    from rlops import components

    return {c.name: c.settings for c in components.all_of("method")}


CONFIG_FILE = "pipelines/conf/config.yaml"


def replace_between(text: str, begin: str, end: str, block: str, file: str) -> str:
    """`text` with the lines between the marker lines `begin` and `end` replaced by `block`."""
    try:
        start = text.index(begin)
        stop = text.index(end, start)
    except ValueError:
        raise ValueError(f"{file}: the markers {begin!r} and {end!r} are missing; put them back") from None
    head = text[:text.index("\n", start) + 1]
    return head + block + text[text.rindex("\n", 0, stop) + 1:]


# config.yaml's generated blocks: (name in the markers, model, indent); the rest of the file is hand-written
CONFIG_BLOCKS = (("extract", ExtractSettings, "  "), ("gate.bootstrap", BootstrapSettings, "    "))


def config_text(text: str) -> str:
    """config.yaml with each generated block regenerated (the defaults list, the rule defaults, ... are kept)."""
    for name, model, indent in CONFIG_BLOCKS:
        text = replace_between(text, f"# <generated: {name}>", f"# </generated: {name}>", yaml_block(model, indent),
                               CONFIG_FILE)
    return text


def _range(schema: Mapping[str, Any]) -> str:
    parts = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in schema:
            parts.append(f"{sign} {schema[key]:g}")
    return ", ".join(parts)


def _type(schema: Mapping[str, Any]) -> str:
    options = schema.get("anyOf")
    if options:
        return " or ".join(_type(o) for o in options)
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if "$ref" in schema:
        return "mapping"
    return {"number": "number", "integer": "integer", "boolean": "true/false", "string": "text", "null": "null",
            "object": "mapping"}.get(schema.get("type", ""), "any")


def readme_table(model: type[Section]) -> str:
    """A markdown table of the model's settings: key, default, type and range, description."""
    schema = model.model_json_schema(by_alias=True)
    values = defaults(model)
    rows = ["| setting | default | type | what |", "|---|---|---|---|"]
    for name in _generated(model):
        field = model.model_fields[name]
        key = field.alias or name
        sub = schema["properties"][key]
        kind = _type(sub)
        rng = _range(sub) or " ".join(_range(o) for o in sub.get("anyOf", []) if _range(o))
        desc = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | `{_flow(values[key])}` | {kind}{f' ({rng})' if rng else ''} | {desc} |")
    return "\n".join(rows) + "\n"


README_TABLES = {"extract": ExtractSettings, "evaluate": EvaluateSettings,
                 "runtime": RuntimeSettings, "gate-bootstrap": BootstrapSettings}  # and `train`: one per method


def readme_text(text: str) -> str:
    """The README with each settings table (between `<!-- settings:NAME:begin -->` markers) regenerated."""
    for name, model in README_TABLES.items():
        text = replace_between(text, f"<!-- settings:{name}:begin -->", f"<!-- settings:{name}:end -->",
                               readme_table(model), "README.md")
    return replace_between(text, "<!-- settings:train:begin -->", "<!-- settings:train:end -->", train_tables(),
                           "README.md")


def train_tables() -> str:
    """One table per train method (the registry's), each under its name, conf file and one-line description."""
    from rlops import components

    return "\n".join(f"`train` for method `{c.name}` (`pipelines/conf/method/{c.name}.yaml`, reads "
                     f"{', '.join(getattr(c, 'sets', ()))}): {c.description}.\n\n{readme_table(c.settings)}"
                     for c in components.all_of("method"))


def _spec_property(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic property as the spec schema writes it: no default (the conf holds it), null where allowed."""
    schema = {k: v for k, v in schema.items() if k != "default"}
    options = schema.get("anyOf")
    if options and any(o.get("type") == "null" for o in options):
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1 and "type" in rest[0]:
            schema.pop("anyOf")
            schema = {**schema, **rest[0], "type": [rest[0]["type"], "null"]}
    first = {k: schema[k] for k in ("title", "description") if k in schema}  # read first in an editor
    return {**first, **{k: v for k, v in schema.items() if k not in first}}


def schema_parts() -> dict[tuple[str, ...], dict[str, Any]]:
    """{path in the cycle schema: sub-schema} for each extract setting (extract.judge comes from the judge registry)."""
    schema = ExtractSettings.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs = schema.get("$defs", {})
    parts = {}
    for key, sub in schema["properties"].items():
        if key == "judge" or (ExtractSettings.model_fields[key].json_schema_extra or {}).get("spec") is False:
            continue
        if "$ref" in sub:  # a nested model: inline it, with the field's own title and description
            nested = defs[sub["$ref"].rsplit("/", 1)[1]]
            sub = {"title": sub.get("title", nested.get("title")), "description": sub.get("description", ""),
                   "type": "object", "additionalProperties": False,
                   "properties": {k: _spec_property(v) for k, v in nested["properties"].items()}}
        parts[("properties", "extract", "properties", key)] = _spec_property(sub)
    return parts
