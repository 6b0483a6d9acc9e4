"""The event contract between the training worker (writer) and the app and CLI (readers).

Every line of events.jsonl is one JSON object: {"v": 1, "t": <unix seconds>, "kind": ...}.
Readers ignore unknown kinds and fields, so the contract can grow without breaking old runs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from typing import Annotated, Any, get_args, get_origin

import msgspec
from msgspec import Meta, Struct

EVENT_VERSION = 1
END_STATUSES = ("completed", "stopped", "failed", "oom")
CHECKPOINT_REASONS = ("last", "best", "each", "signal", "interval")
OOM_PHASES = ("load", "forward", "backward", "optimizer", "eval")
# start events also carry `environment`, a dict with these keys (a value is null where unknown,
# e.g. cuda/driver on a CPU box; `gpus` is a list of names). Runs from before it have none.
ENVIRONMENT_FIELDS = ("python", "torch", "cuda", "transformers", "peft", "accelerate",
                      "bitsandbytes", "gpus", "driver", "tui_tune", "git_commit", "git_dirty")


# -- the records: one per kind -------------------------------------------------------------
# A field without a default is required in every event of its kind; one with a default may be
# absent (older runs, or only some events carry it). In `step` and `eval`, every float field is
# a metric: the monitor charts it, compare offers it and `ls --json` lists its latest value, so a
# new metric is one line here (a title for the chart picker: Annotated[..., Meta(title=...)]).
# Counts (int) and text are not charted. None (JSON null) means "not recorded".

class Start(Struct, kw_only=True):
    """The run (re)starts: what it is and what it runs on. A second start marks a resume."""

    run_id: str
    world_size: int
    devices: list[str]
    params_total: int
    params_trainable: int
    steps_total: int
    train_rows: int
    val_rows: int
    seed: int | None = None
    steps_per_epoch: int | None = None
    method: str | None = None
    mixed_precision: str | None = None
    resumed_from_step: int | None = None  # null on a fresh start
    environment: dict[str, Any] | None = None  # ENVIRONMENT_FIELDS; rank 0 only
    mem_estimate_gib: float | None = None  # runs/estimate's peak per GPU; null: no config.json


class Step(Struct, kw_only=True):
    """Every logging.log_every_steps optimizer steps, and at the last one."""

    step: int
    epoch: float
    loss: Annotated[float, Meta(title="train loss")]  # the window mean over steps and ranks
    lr: Annotated[float, Meta(title="learning rate")]
    grad_norm: Annotated[float | None, Meta(title="grad norm")]  # null: log_grad_norm off
    tokens: int
    tokens_per_s: Annotated[float, Meta(title="tokens/s")]
    step_time_s: Annotated[float, Meta(title="step time s")]
    mem_allocated_gib: Annotated[float, Meta(title="memory allocated GiB")]
    mem_reserved_gib: Annotated[float, Meta(title="memory reserved GiB")]
    mem_peak_gib: Annotated[float, Meta(title="memory peak GiB")]
    tokens_seen: int | None = None
    # dpo: the window's means over pairs (rewards are beta * log-prob gains over the reference)
    train_rewards_chosen: Annotated[float | None, Meta(title="train reward chosen")] = None
    train_rewards_rejected: Annotated[float | None, Meta(title="train reward rejected")] = None
    train_reward_margin: Annotated[float | None, Meta(title="train reward margin")] = None
    train_preference_accuracy: Annotated[float | None,
                                         Meta(title="train preference accuracy")] = None
    train_logps_chosen: Annotated[float | None, Meta(title="train log-prob chosen")] = None
    train_logps_rejected: Annotated[float | None, Meta(title="train log-prob rejected")] = None
    # grpo: sampled completions' mean reward, its std within a group, KL to the reference,
    # clipped-token fraction, tokens per completion, groups whose rewards were all alike, and
    # each built-in reward function's mean
    train_reward: Annotated[float | None, Meta(title="train reward")] = None
    train_reward_std: Annotated[float | None, Meta(title="train reward std in group")] = None
    train_kl: Annotated[float | None, Meta(title="train KL to reference")] = None
    train_clip_ratio: Annotated[float | None, Meta(title="train clip ratio")] = None
    train_completion_length: Annotated[float | None, Meta(title="completion length")] = None
    train_zero_std_fraction: Annotated[float | None, Meta(title="groups with no reward std")] = None
    train_reward_exact_match: Annotated[float | None, Meta(title="reward exact match")] = None
    train_reward_format: Annotated[float | None, Meta(title="reward format")] = None
    train_reward_length: Annotated[float | None, Meta(title="reward length")] = None


class Eval(Struct, kw_only=True):
    """One pass over the validation rows."""

    step: int
    val_loss: Annotated[float, Meta(title="val loss")]
    metric: str  # the name of metric_value (prediction.metric; "perplexity" when none)
    metric_value: Annotated[float, Meta(title="eval metric")]
    # every metric of the run's problem type (train/tasks/), absent for the other types
    perplexity: Annotated[float | None, Meta(title="perplexity")] = None  # causal_lm
    accuracy: Annotated[float | None, Meta(title="accuracy")] = None
    auc: Annotated[float | None, Meta(title="ROC AUC")] = None
    logloss: Annotated[float | None, Meta(title="log loss")] = None
    f1: Annotated[float | None, Meta(title="F1")] = None
    precision: Annotated[float | None, Meta(title="precision")] = None
    recall: Annotated[float | None, Meta(title="recall")] = None
    mse: Annotated[float | None, Meta(title="MSE")] = None
    mae: Annotated[float | None, Meta(title="MAE")] = None
    r2: Annotated[float | None, Meta(title="R²")] = None
    exact_match: Annotated[float | None, Meta(title="exact match")] = None  # extractive_qa
    # causal_lm, metric exact_match: the answers generated exactly right, of how many
    exact_count: int | None = None
    exact_total: int | None = None
    # dpo: means over the validation pairs
    preference_accuracy: Annotated[float | None, Meta(title="preference accuracy")] = None
    reward_margin: Annotated[float | None, Meta(title="reward margin")] = None
    rewards_chosen: Annotated[float | None, Meta(title="reward chosen")] = None
    rewards_rejected: Annotated[float | None, Meta(title="reward rejected")] = None
    logps_chosen: Annotated[float | None, Meta(title="log-prob chosen")] = None
    logps_rejected: Annotated[float | None, Meta(title="log-prob rejected")] = None
    rouge1: Annotated[float | None, Meta(title="ROUGE-1")] = None  # seq2seq
    rouge2: Annotated[float | None, Meta(title="ROUGE-2")] = None  # seq2seq
    rougeL: Annotated[float | None, Meta(title="ROUGE-L")] = None  # seq2seq
    bleu: Annotated[float | None, Meta(title="BLEU")] = None  # seq2seq
    chrf: Annotated[float | None, Meta(title="chrF")] = None  # seq2seq
    # classification: counts[true][predicted] over the validation rows, and the class names
    confusion: list[list[int]] | None = None
    labels: list[str] | None = None
    # causal_lm, metric llm_judge: the judge's mean score on its template's scale, replies
    # without a score, requests that failed, and a few judged answers with the judge's reason
    llm_judge: Annotated[float | None, Meta(title="LLM judge")] = None
    reward: Annotated[float | None, Meta(title="reward")] = None  # grpo: greedy answers' mean
    judge_unparsed: int | None = None
    judge_failed: int | None = None
    judge_examples: list[dict[str, Any]] | None = None


class Sample(Struct, kw_only=True):
    """One generation shown beside its reference, after an eval."""

    step: int
    prompt: str
    generation: str  # what the model wrote (labelling types: its labels, values or tags)
    reference: str
    # labelling types, structured: the predicted and true labels / values / tags, the words
    # of a tagged row, and the class probabilities of a classified one
    predicted: Any = None
    truth: Any = None
    words: list[str] | None = None
    probabilities: dict[str, float] | None = None
    # extractive_qa: the context, and the predicted and true answers' [start, end) character
    # offsets in it (null: no answer), so the monitor can mark them
    context: str | None = None
    span: list[int] | None = None
    truth_span: list[int] | None = None
    # causal_lm with metric llm_judge: the judge's score of this answer and its reason
    judge_score: float | None = None
    judge_reason: str | None = None
    rejected: str | None = None  # dpo: the rejected answer (reference is the chosen one)
    completions: list[dict[str, Any]] | None = None  # grpo: sampled {text, reward}, a few
    # multimodal_causal_lm: the row's image files, absolute paths on the training host (the
    # monitor shows them beside the text; a path that has gone is shown as missing)
    images: list[str] | None = None


class Checkpoint(Struct, kw_only=True):
    step: int
    path: str
    reason: str  # CHECKPOINT_REASONS


class Log(Struct, kw_only=True):
    level: str
    message: str


class End(Struct, kw_only=True):
    """The run's last event: completed/stopped carry step, final and best_*; a user error
    error_type="UserError", message, phase, setting, file; a crash error_type, message,
    traceback (last lines), phase (OOM_PHASES on oom, with the memory readings); `rank` when
    a rank other than 0 wrote it."""

    status: str  # END_STATUSES
    step: int | None = None
    final: str | None = None
    best_val_loss: float | None = None
    best_checkpoint: str | None = None
    error_type: str | None = None
    message: str | None = None
    traceback: list[str] | None = None
    phase: str | None = None
    setting: str | None = None
    file: str | None = None
    rank: int | None = None
    mem_allocated_gib: float | None = None
    mem_reserved_gib: float | None = None
    mem_peak_gib: float | None = None  # oom, and any end on a GPU: torch's peak (null on CPU)


RECORDS: dict[str, type[Struct]] = {"start": Start, "step": Step, "eval": Eval, "sample": Sample,
                                    "checkpoint": Checkpoint, "log": Log, "end": End}
KINDS = tuple(RECORDS)
ENVELOPE = ("v", "t", "kind")  # every line: contract version, unix seconds, kind
# kind -> fields every event of that kind carries (more are allowed).
REQUIRED: dict[str, tuple[str, ...]] = {
    kind: tuple(f.name for f in msgspec.structs.fields(record) if f.required)
    for kind, record in RECORDS.items()}
FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(f.name for f in msgspec.structs.fields(record)) for kind, record in RECORDS.items()}


def _metric_title(field: msgspec.structs.FieldInfo) -> str | None:
    """The chart title of a float field (its Meta title, else its name); None for others.
    (typing, not msgspec.inspect: that one imports `inspect` and more, for nothing here.)"""
    kind, title = field.type, field.name
    if get_origin(kind) is Annotated:
        kind, *metas = get_args(kind)
        title = next((m.title for m in metas if getattr(m, "title", None)), title)
    return title if kind is float or float in get_args(kind) else None


# kind -> {metric name: chart title}, in declaration order: the numbers of `step` and `eval`
METRICS: dict[str, dict[str, str]] = {
    kind: {f.name: title for f in msgspec.structs.fields(RECORDS[kind])
           if (title := _metric_title(f)) is not None}
    for kind in ("step", "eval")}


# -- decoding: what readers may meet and how they type it ---------------------------------
# NaN and inf: JSON has no such numbers, so the writer spells them "nan", "inf", "-inf" (encode,
# json_safe); readers also meet bare NaN literals (Python's json writes them). None (null) is
# "not recorded" and never an error. Any field may hold any JSON value in a line someone else
# wrote: readers take each value through runs/event_values.py (or `Wire` columns, below).
NAN = math.nan
Wire = float | str | None  # a metric as a line holds it: a number, "nan"/"inf", or null
NONFINITE = ("nan", "inf", "-inf")  # how encode spells the floats JSON has no numbers for


def reader_struct(name: str, numbers: Iterable[str] = (), others: Iterable[str] = (),
                  texts: Iterable[str] = ()) -> type[Struct]:
    """A flat struct that decodes only the named fields of any kind, for bulk decoding with
    msgspec (one type for every line, unknown fields skipped): `numbers` as `Wire` (NaN when
    absent), `texts` as str ("" when absent; a line holding anything else there does not
    decode), the rest as whatever JSON they hold (None when absent). Each name must be in the
    envelope or a record, so a reader cannot ask for a field the contract does not have."""
    known = set(ENVELOPE).union(*FIELDS.values())
    numbers, others, texts = tuple(numbers), tuple(others), tuple(texts)
    unknown = [n for n in (*texts, *numbers, *others) if n not in known]
    if unknown:
        raise ValueError(f"{name}: {', '.join(unknown)} not in the event contract")
    fields = ([(n, str, "") for n in texts] + [(n, Wire, NAN) for n in numbers]
              + [(n, Any, None) for n in others])
    # decoded JSON has no cycles: untracked by the GC is faster
    return msgspec.defstruct(name, fields, gc=False, module=__name__)


def make_event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"v": EVENT_VERSION, "t": round(time.time(), 3), "kind": kind, **fields}


def encode(event: dict[str, Any]) -> str:
    """One line of JSON; NaN and inf become strings (at any depth), since JSON has no such
    numbers. The common all-finite event is dumped once."""
    try:
        return json.dumps(event, separators=(",", ":"), default=str, allow_nan=False) + "\n"
    except ValueError:  # a non-finite float somewhere: spell every one as a string
        return json.dumps(json_safe(event), separators=(",", ":"), default=str) + "\n"


def json_safe(value: Any) -> Any:
    """`value` with NaN and inf spelled "nan"/"inf", at any depth: JSON has no such numbers,
    and strict parsers (jq, JavaScript) refuse Python's NaN. Readers' output uses it too."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def as_float(value: Any) -> float:
    """Numbers from events, with 'nan'/'inf' strings (see encode) turned back into floats."""
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def decode(line: str | bytes) -> dict[str, Any] | None:
    """A parsed event, or None for a line that is not one (blank, garbage, foreign JSON)."""
    try:
        event = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("kind"), str):
        return None
    return event


def contract_problems(event: dict[str, Any]) -> list[str]:
    """What makes an event break the contract: a missing envelope or required field, a field
    of the wrong type (its record's annotation; "nan"/"inf" count as floats), an end status
    not in END_STATUSES. Unknown kinds and fields are allowed (empty list)."""
    problems = [f"missing {name}" for name in ENVELOPE if name not in event]
    kind = event.get("kind", "")
    record = RECORDS.get(kind)
    if record is None:
        return problems
    for field in msgspec.structs.fields(record):
        if field.name not in event:
            if field.required:
                problems.append(f"{kind}: missing {field.name}")
            continue
        problem = _type_problem(event[field.name], field.type)
        if problem:
            problems.append(f"{kind}: {field.name} {event[field.name]!r}: {problem}")
    if kind == "end" and event.get("status") not in END_STATUSES:
        problems.append(f"end: status {event.get('status')!r} not in {END_STATUSES}")
    return problems


def _type_problem(value: Any, annotation: Any) -> str | None:
    """Why `value` does not fit the field's type; "nan"/"inf" fit where a float does."""
    try:
        msgspec.convert(value, annotation)
    except msgspec.ValidationError as error:
        if value in NONFINITE:
            return _type_problem(float(value), annotation)
        return str(error)
    return None
