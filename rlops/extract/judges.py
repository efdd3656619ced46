"""Judges for the RLAIF rule: something that says which of two answers to the same prompt is better.

A cycle spec picks one under `extract.judge`, by name, never with code: a programmatic rubric registered here
(`rubric`), a local transformers model (`transformers`), or any OpenAI-compatible endpoint (`http`).
`judge_pair` asks in both orders and names a winner only when the two verdicts agree, so a judge's position
bias yields no pair rather than a wrong one.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from pydantic import Field, ValidationInfo, field_validator

from rlops import components, layout
from rlops.components import Component, Settings, register
from rlops.errors import InvalidInput, Problem, RlopsError
from rlops.evaluate.metrics import keyword_groups as include_exclude_score

Messages = list[dict]  # OpenAI chat messages
Rubric = Callable[[Messages, Messages], float]  # score(prompt, answer), higher is better
FIRST, SECOND, TIE = "first", "second", "tie"
PREFERENCES = (FIRST, SECOND, TIE)
PARAMS_FILE = "params.yaml"
FIELD = "extract.judge"


class Judge(Protocol):
    name: str  # e.g. "rubric:support-quality", "transformers:artifacts/judge", "http:judge-1@http://host/v1"

    def prefer(self, prompt: Messages, first: Messages, second: Messages) -> str:
        """Which answer to `prompt` is better: "first", "second" or "tie"."""
        ...


@dataclass(frozen=True)
class PairJudgment:  # one pair judged in both orders (the gate's verdict is rlops.gate.Verdict)
    winner: str | None  # "a", "b", or None when the two orders disagree or both say tie
    forward: str  # the judge's answer with a shown first
    backward: str  # the judge's answer with b shown first


def judge_pair(judge: Judge, prompt: Messages, a: Messages, b: Messages) -> PairJudgment:
    """Ask in both orders; a winner only when both verdicts pick the same answer (position-consistent)."""
    forward, backward = judge.prefer(prompt, a, b), judge.prefer(prompt, b, a)
    for said in (forward, backward):
        if said not in PREFERENCES:
            raise RlopsError(f"judge {judge.name} answered {said!r}; a judge answers one of {', '.join(PREFERENCES)}")
    winner = "a" if (forward, backward) == (FIRST, SECOND) else "b" if (forward, backward) == (SECOND, FIRST) else None
    return PairJudgment(winner, forward, backward)


# ---- programmatic rubrics: score(prompt, answer) -> float, higher is better --------------------------------------

RUBRICS: dict[str, Rubric] = {}


def register_rubric(name: str) -> Callable[[Rubric], Rubric]:
    """Register `fn(prompt, answer) -> score` under `name`, for `extract.judge: {type: rubric, rubric: name}`."""

    def register(fn: Rubric) -> Rubric:
        if name in RUBRICS and RUBRICS[name] is not fn:
            raise ValueError(f"a rubric named {name!r} is already registered")
        RUBRICS[name] = fn
        return fn

    return register


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message whose content is a string, None, or a list of OpenAI content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def _texts(messages: Messages, role: str) -> str:
    return "\n".join(message_text(m) for m in messages if isinstance(m, Mapping) and m.get("role") == role)


PROBLEM = re.compile(
    r"\b(broke|broken|damag|crack|shatter|dent|chipped|snapped|scratch|missing|late|delay|never (?:arrived|came)"
    r"|wrong|defect|faulty|leak|torn|refund|return|complain|not work|doesn't work|does not work|stopped working)",
    re.IGNORECASE,
)
# order ids as support tickets write them: NW-55120, #123456, order 123456
ORDER_ID = re.compile(r"\b[A-Z]{2,4}-\d{3,}\b|(?<=#)\d{4,}\b|(?<=order )\d{4,}\b|(?<=order number )\d{4,}\b", re.I)
APOLOGY = ["sorry", "apolog"]
ASKS_ORDER = ["order number", "order id", "order #", "order no"]
REMEDY = ["replace", "refund", "resend", "re-send", "send a new", "send another", "reship", "credit"]
RUDE = ["stupid", "idiot", "not our problem", "not my problem", "your fault", "your own fault", "calm down",
        "deal with it", "stop complaining", "read the manual", "as an ai", "language model"]
MIN_WORDS, MAX_WORDS = 8, 150  # shorter or longer answers lose score in proportion


@register_rubric("support-quality")
def support_quality(prompt: Messages, answer: Messages) -> float:
    """Support reply quality in [0, 1]: for a reported problem, an apology, the order number (used if the customer
    gave it, asked for if not) and a replacement or refund; 0 if rude; scaled down when under 8 or over 150 words."""
    asked, text = _texts(prompt, "user"), _texts(answer, "assistant")
    groups: list[list[str]] = []
    if PROBLEM.search(asked):
        order = ORDER_ID.search(asked)
        groups = [APOLOGY, [order.group(0)] if order else ASKS_ORDER, REMEDY]
    # the eval metric's scoring, reused: fraction of groups met, 0 when an excluded phrase appears;
    # with no problem reported, the one group [""] always matches, so only rudeness and length count
    score = include_exclude_score({"rubric": {"include_any": groups or [[""]], "exclude": RUDE}}, text)
    words = len(text.split())
    if words < MIN_WORDS:
        score *= words / MIN_WORDS
    elif words > MAX_WORDS:
        score *= MAX_WORDS / words
    return score


class RubricJudge:
    """Scores both answers with a registered rubric; scores within `tie_margin` are a tie."""

    def __init__(self, rubric: str, tie_margin: float = 1e-6):
        self.name = f"rubric:{rubric}"
        self.score = RUBRICS[rubric]
        self.tie_margin = tie_margin

    def prefer(self, prompt: Messages, first: Messages, second: Messages) -> str:
        diff = self.score(prompt, first) - self.score(prompt, second)
        return TIE if abs(diff) <= self.tie_margin else FIRST if diff > 0 else SECOND


# ---- model judges: one comparison prompt, answered with "1" or "2" -----------------------------------------------

JUDGE_SYSTEM = "You are an impartial judge. You compare two replies of an assistant to the same conversation."
QUESTION = "Which answer is better, 1 or 2? Answer with 1 or 2."


def _render(messages: Messages, max_chars: int, keep_end: bool) -> str:
    lines = []
    for m in messages:
        if not isinstance(m, Mapping):
            continue
        role = str(m.get("role", "?"))
        if role == "tool":
            role = f"tool result{' ' + m['name'] if isinstance(m.get('name'), str) else ''}"
        text = message_text(m)
        if text:
            lines.append(f"[{role}] {text}")
        for call in m.get("tool_calls") or []:
            fn = call.get("function", {}) if isinstance(call, Mapping) else {}
            lines.append(f"[{role} calls a tool] {fn.get('name', '?')}({fn.get('arguments', '')})")
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return text
    # the conversation keeps its latest turns, an answer its beginning
    return "[...]" + text[-max_chars:] if keep_end else text[:max_chars] + "[...]"


def comparison_messages(prompt: Messages, first: Messages, second: Messages, max_chars: int = 4000) -> Messages:
    """The chat a model judge answers: the conversation, answer 1, answer 2, and the question."""
    body = (f"Conversation:\n{_render(prompt, max_chars, True)}\n\n"
            f"Answer 1:\n{_render(first, max_chars, False)}\n\n"
            f"Answer 2:\n{_render(second, max_chars, False)}\n\n{QUESTION}")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": body}]


# a reply counts when it starts with the digit, e.g. "2", "**1**", "Answer 2."; anything else is unparseable
CHOICE = re.compile(r"^\W*(?:answer\s*)?([12])(?!\d)", re.IGNORECASE)


def parse_choice(reply: str | None) -> str | None:
    match = CHOICE.match(reply or "")
    return None if match is None else FIRST if match.group(1) == "1" else SECOND


class TransformersJudge:
    """A local causal LM: compares the next-token log-probabilities of "1" and "2" (no sampling, deterministic)."""

    def __init__(self, path: Path, name: str, device: str = "cpu", dtype: str = "auto", tie_margin: float = 0.0,
                 max_chars: int = 4000):
        self.name, self.path, self.device, self.dtype = f"transformers:{name}", path, device, dtype
        self.tie_margin, self.max_chars = tie_margin, max_chars
        self._model = self._tokenizer = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RlopsError(f"judge {self.name}: device {self.device!r} but no CUDA device is available",
                             hint="set extract.judge.device: cpu, or run on a machine with a GPU")
        tokenizer = AutoTokenizer.from_pretrained(self.path)
        kwargs = {} if self.dtype == "auto" else {"dtype": getattr(torch, self.dtype)}
        model = AutoModelForCausalLM.from_pretrained(self.path, **kwargs).to(self.device).eval()
        digits = [tokenizer.encode(d, add_special_tokens=False) for d in ("1", "2")]
        if any(len(ids) != 1 for ids in digits):
            raise RlopsError(f"judge {self.name}: its tokenizer does not encode '1' and '2' as single tokens",
                             hint="use a judge model whose tokenizer has single-digit tokens (most do)")
        self._digits = (digits[0][0], digits[1][0])
        self._model, self._tokenizer = model, tokenizer

    def _input_ids(self, messages: Messages):
        tok = self._tokenizer
        if tok.chat_template:
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True, return_tensors="pt")
            ids = ids["input_ids"]
        else:  # a base model: plain text, the answer digit comes on the next line
            ids = tok("\n\n".join(m["content"] for m in messages) + "\n", return_tensors="pt")["input_ids"]
        limit = getattr(self._model.config, "max_position_embeddings", None)
        if limit and ids.shape[-1] > limit:
            raise RlopsError(f"judge {self.name}: the comparison prompt has {ids.shape[-1]} tokens, over the model's "
                             f"{limit}", hint="lower extract.judge.max_chars (characters kept per conversation/answer)")
        return ids.to(self.device)

    def margin(self, prompt: Messages, first: Messages, second: Messages) -> float:
        """log p("1") - log p("2") for the next token: > 0 prefers the first answer."""
        return self.digit_margin(comparison_messages(prompt, first, second, self.max_chars))

    def digit_margin(self, messages: Messages) -> float:
        """log p("1") - log p("2") for the next token after `messages` (any question answered by 1 or 2)."""
        import torch

        if self._model is None:
            self._load()
        ids = self._input_ids(messages)
        with torch.inference_mode():
            try:  # only the last position's logits: skips most of the vocabulary projection
                logits = self._model(input_ids=ids, logits_to_keep=1).logits[0, -1].float()
            except TypeError:  # a model class without logits_to_keep
                logits = self._model(input_ids=ids).logits[0, -1].float()
        logp = torch.log_softmax(logits, dim=-1)
        return float(logp[self._digits[0]] - logp[self._digits[1]])

    def prefer(self, prompt: Messages, first: Messages, second: Messages) -> str:
        m = self.margin(prompt, first, second)
        return TIE if abs(m) <= self.tie_margin else FIRST if m > 0 else SECOND


class HttpJudge:
    """Any OpenAI-compatible endpoint: POST {url}/chat/completions, temperature 0; the reply must start with 1 or 2.

    An unparseable reply counts as a tie (the pair is dropped, not guessed) and is counted in `unparsed`.
    429 and 5xx answers, timeouts and refused connections are retried with exponential backoff, at most
    `max_retries` times; any other failure raises RlopsError naming the URL.
    """

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0,
                 max_retries: int = 3, retry_backoff_s: float = 1.0, max_tokens: int = 4, max_chars: int = 4000):
        self.name = f"http:{model}@{url}"
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model, self._api_key, self.timeout_s = model, api_key, timeout_s
        self.max_retries, self.retry_backoff_s = max_retries, retry_backoff_s
        self.max_tokens, self.max_chars = max_tokens, max_chars
        self.unparsed = 0  # replies that were neither 1 nor 2

    def _post(self, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = json.dumps(body).encode()
        last = ""
        for attempt in range(self.max_retries + 1):
            delay = self.retry_backoff_s * 2**attempt
            request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    raw = response.read()
            except urllib.error.HTTPError as e:
                detail = (e.read() if e.fp else b"")[:300].decode("utf-8", "replace").strip()
                if e.code != 429 and e.code < 500:
                    hint = {401: "check the key in the environment variable named by extract.judge.api_key_env",
                            403: "check the key in the environment variable named by extract.judge.api_key_env",
                            404: "extract.judge.url is the API base (e.g. http://host:8000/v1), without "
                                 "/chat/completions; check extract.judge.model"}.get(e.code)
                    raise RlopsError(f"judge endpoint {self.endpoint} answered HTTP {e.code}: {detail}", hint=hint) from None
                last = f"HTTP {e.code} {detail}".strip()
                after = e.headers.get("Retry-After", "")
                delay = float(after) if after.strip().isdigit() else delay
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
                last = str(getattr(e, "reason", e))
            else:
                try:
                    return json.loads(raw)
                except ValueError:
                    raise RlopsError(f"judge endpoint {self.endpoint} answered something that is not JSON: "
                                     f"{raw[:200]!r}", hint="is extract.judge.url an OpenAI-compatible API?") from None
            if attempt < self.max_retries:
                time.sleep(min(delay, 60.0))
        raise RlopsError(f"judge endpoint {self.endpoint} failed after {self.max_retries + 1} attempts: {last}",
                         hint="check that the server is up and extract.judge.url is right; "
                              "raise extract.judge.timeout_s or max_retries for a slow server")

    def prefer(self, prompt: Messages, first: Messages, second: Messages) -> str:
        choice = self.ask(comparison_messages(prompt, first, second, self.max_chars))
        if choice is None:
            self.unparsed += 1
            return TIE
        return choice

    def ask(self, messages: Messages) -> str | None:
        """FIRST or SECOND as the endpoint answers 1 or 2 to `messages` (any such question); None if neither."""
        body = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}
        reply = self._post(body)
        try:
            content = reply["choices"][0]["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise RlopsError(f"judge endpoint {self.endpoint} did not answer a chat completion "
                             f"(no choices[0].message): {json.dumps(reply)[:200]}",
                             hint="is extract.judge.url an OpenAI-compatible API?") from None
        return parse_choice(content if isinstance(content, str) else None)


# ---- judge types: components with typed settings; extract.judge -> a Judge, every problem reported at once --------
# A new judge type is a settings model (subclass JudgeConfig, with its checks as validators), a builder
# `(settings, root) -> Judge`, a `register(Component("judge", ...))` call, and one line in components.BUILTIN.

DEVICE = re.compile(r"^(cpu|mps|(cuda|xpu|npu)(:\d+)?)$")
DTYPES = ("auto", "float32", "bfloat16", "float16")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NON_EMPTY = {"min_length": 1, "pattern": r"\S"}  # a string with something in it


class JudgeConfig(Settings):
    """The keys every judge takes under extract.judge (besides max_pairs and min_gap, which the extractor reads)."""

    type: str = Field(title="Judge type", description="The judge type, by name.")


def registered_rubric(name: str) -> str:
    """`name` when a rubric of that name is registered; a ValueError naming the registered ones otherwise (the
    check of every settings field that names a rubric: a judge's, a reward function's)."""
    if name not in RUBRICS:
        raise ValueError(f"{name!r} is not a registered rubric; use one of {', '.join(sorted(RUBRICS))} "
                         "or register one with @rlops.extract.judges.register_rubric")
    return name


class RubricConfig(JudgeConfig):
    rubric: str = Field(title="Rubric", description="A rubric registered with @register_rubric.", **NON_EMPTY)
    tie_margin: float = Field(1e-6, ge=0, title="Tie margin", description="rubric: scores within this are a tie.")

    @field_validator("rubric")
    @classmethod
    def _registered(cls, name: str) -> str:
        return registered_rubric(name)


class TransformersConfig(JudgeConfig):
    model: str = Field(title="Model", description="transformers: a model folder written by save_pretrained, "
                                                  "relative to the repository root.", **NON_EMPTY)
    device: str = Field("cpu", title="Device", description="A torch device: cpu, cuda, cuda:1, mps, ...",
                        json_schema_extra={"pattern": DEVICE.pattern})
    dtype: str = Field("auto", title="Weights dtype", description="The dtype the model is loaded in.",
                       json_schema_extra={"enum": list(DTYPES)})
    tie_margin: float = Field(0.0, ge=0, title="Tie margin",
                              description="transformers: log-probability margins within this are a tie.")
    max_chars: int = Field(4000, gt=0, description="Characters kept per conversation and per answer.")

    @field_validator("model")
    @classmethod
    def _model_folder(cls, value: str, info: ValidationInfo) -> str:
        rel = PurePosixPath(value)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"{value!r} points outside the repository; use a path relative to its root")
        root = Path((info.context or {}).get("root", "."))
        if not (root / rel / "config.json").is_file():
            raise ValueError(f"{value!r} is not a model folder (no {rel.as_posix()}/config.json in {root}); "
                             f"point it at a folder written by save_pretrained, e.g. {layout.BASE_MODEL}")
        return rel.as_posix()

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE.match(value):
            raise ValueError(f"{value!r} is not a torch device; use cpu, cuda, cuda:1, mps, ...")
        return value

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str) -> str:
        if value not in DTYPES:
            raise ValueError(f"{value!r} is not one of {', '.join(DTYPES)}")
        return value


class HttpConfig(JudgeConfig):
    url: str = Field(title="API base URL", description="e.g. http://127.0.0.1:8000/v1", **NON_EMPTY)
    model: str = Field(title="Model", description="http: the model name the endpoint serves.", **NON_EMPTY)
    api_key_env: str | None = Field(None, description="The environment variable that holds the API key.")
    timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for one answer.")
    max_retries: int = Field(3, ge=0, description="Retries of 429/5xx answers, timeouts and refused connections.")
    retry_backoff_s: float = Field(1.0, ge=0, description="First retry delay, doubled each time.")
    max_tokens: int = Field(4, gt=0, description="Tokens the judge may answer with.")
    max_chars: int = Field(4000, gt=0, description="Characters kept per conversation and per answer.")

    @field_validator("url")
    @classmethod
    def _api_base(cls, value: str) -> str:
        url = urllib.parse.urlsplit(value)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL; give the API base, e.g. http://127.0.0.1:8000/v1")
        if url.path.rstrip("/").endswith("/chat/completions"):
            raise ValueError(f"give the API base without /chat/completions, e.g. "
                             f"{value.rstrip('/').removesuffix('/chat/completions')}")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name; name the variable, not the key")
        if not os.environ.get(value):
            raise ValueError(f"the environment variable {value} is not set; export it before running the extract stage")
        return value


def rubric_judge(settings: RubricConfig, root: Path) -> Judge:
    return RubricJudge(settings.rubric, settings.tie_margin)


def transformers_judge(settings: TransformersConfig, root: Path) -> Judge:
    return TransformersJudge(root / settings.model, settings.model, settings.device, settings.dtype,
                             settings.tie_margin, settings.max_chars)


def http_judge(settings: HttpConfig, root: Path) -> Judge:
    api_key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
    return HttpJudge(settings.url, settings.model, api_key or None, settings.timeout_s, settings.max_retries,
                     settings.retry_backoff_s, settings.max_tokens, settings.max_chars)


for _judge in (
    Component("judge", "rubric", "a programmatic rubric registered by name scores both answers",
              reads="the prompt and two answers", writes="first, second or tie", function=rubric_judge,
              settings=RubricConfig),
    Component("judge", "transformers", "a local causal LM compares the log-probabilities of answering 1 or 2",
              reads="the prompt and two answers; a model folder", writes="first, second or tie",
              function=transformers_judge, settings=TransformersConfig),
    Component("judge", "http", "any OpenAI-compatible endpoint answers 1 or 2 at temperature 0",
              reads="the prompt and two answers; an HTTP endpoint", writes="first, second or tie",
              function=http_judge, settings=HttpConfig),
):
    register(_judge)


OWN_KEYS = {  # extract.judge keys the extractor reads, whatever the type (rlops/extract/params.py)
    "max_pairs": {"title": "Judged pairs", "description": "At most this many pairs are sent to the judge.",
                  "type": "integer", "minimum": 0},
    "min_gap": {"title": "Judge score gap",
                "description": "Recorded judge scores pair up when at least this far apart on a 0-1 scale.",
                "type": "number", "minimum": 0, "maximum": 1},
}
NONE = {"none": "no live judge: recorded judge scores only"}


def judge_schema() -> dict[str, Any]:
    """The JSON Schema of `extract.judge` in a cycle spec, derived from the registered judge types."""
    properties, branches = components.variant_schema("judge", "type", shared=OWN_KEYS, also=NONE)
    return {"title": "Judge",
            "description": "The live AI judge (RLAIF) for the judge rule, chosen by name under type, plus max_pairs "
                           "(how many candidate pairs it judges, each in both orders) and min_gap (how far apart "
                           "recorded judge scores must be, on a 0-1 scale, to pair up). The other keys configure the "
                           "judge type (see the README's Judges section); the types and their keys come from the judge "
                           "registry (rlops/extract/judges.py).",
            "type": "object", "properties": properties, "allOf": branches}


def build_judge(config: Mapping[str, Any], root: Path, field: str = FIELD) -> Judge:
    """The judge that `config` (params.yaml's `field`: extract.judge, or a win_rate gate's judge) describes; raise
    InvalidInput listing every problem with its fix."""
    settings = _checked(config, root, field)
    return components.get("judge", config["type"]).function(settings, Path(root))


def judge_problems(config: Any, root: Path, file: str = PARAMS_FILE, field: str = FIELD) -> list[Problem]:
    """Every problem of a judge configuration, each named `field.key` (what `rlops plan` reports); builds nothing."""
    try:
        _checked(config, root, field, file)
    except InvalidInput as e:
        return list(e.problems)
    return []


def _checked(config: Any, root: Path, field: str, file: str = PARAMS_FILE) -> Any:
    problems: list[Problem] = []

    def fail() -> InvalidInput:
        return InvalidInput(problems, hint="see the README's 'Judges' section for every judge type and its options")

    if not isinstance(config, Mapping):
        problems.append(Problem(file, None, field, "must be a mapping such as {type: rubric, rubric: "
                                                          f"support-quality}}, not {type(config).__name__}"))
        raise fail()
    kind = config.get("type")
    if not isinstance(kind, str) or kind not in components.names("judge"):
        problems.append(Problem(file, None, f"{field}.type",
                                f"{'missing' if kind is None else repr(kind) + ' is not a judge type'}; "
                                f"use one of {', '.join(components.names('judge'))}"))
        raise fail()
    judge = components.get("judge", kind)
    if "api_key" in config:
        problems.append(Problem(file, None, f"{field}.api_key",
                                "never put a key in the spec; name the environment variable that holds it in "
                                "api_key_env"))
    fields = judge.settings.model_fields
    # a required key written as null is missing, not a wrong type
    values = {k: v for k, v in config.items() if k != "api_key" and not (v is None and k in fields and fields[k].is_required())}
    settings, found = components.validate(judge, values, file, field, context={"root": Path(root)})
    problems += found
    if problems:
        raise fail()
    return settings
