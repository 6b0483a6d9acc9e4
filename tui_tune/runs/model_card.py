"""The README.md of an exported model or adapter (a Hugging Face model card): what was trained,
from what, on which files, the final metrics and how the loss went, read from the run's
config.toml and events.jsonl. No torch: the card is text about files."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_tune.config.problem_types import applies
from tui_tune.config.toml_io import read_toml
from tui_tune.events import decode
from tui_tune.rundir import RunDir
from tui_tune.runs.event_values import count, finite, measure

PIPELINE_TAGS = {"causal_lm": "text-generation", "classification": "text-classification",
                 "regression": "text-classification",
                 "token_classification": "token-classification",
                 "seq2seq": "text2text-generation"}
# the settings the summary table shows (config.toml is in the card whole, folded away)
SUMMARY = ("general.problem_type", "general.backbone", "general.pretrained_weights",
           "architecture.backbone_dtype", "adapter.method", "adapter.r", "adapter.alpha",
           "adapter.dropout", "adapter.target_modules", "training.optimizer", "training.lr",
           "training.schedule", "training.epochs", "training.max_steps", "training.batch_size",
           "training.grad_accumulation", "training.loss", "tokenizer.max_length",
           "environment.seed")
LORA_ONLY = ("adapter.r", "adapter.alpha", "adapter.dropout")
DATA = ("dataset.train_file", "dataset.validation_strategy", "dataset.validation_file",
        "dataset.validation_size", "dataset.test_file", "dataset.system_column",
        "dataset.prompt_columns", "dataset.answer_column", "dataset.label_columns",
        "dataset.words_column", "dataset.tags_column", "dataset.parent_id_column",
        "dataset.use_chat_template")
CURVE_POINTS = 10


@dataclass
class History:
    """What events.jsonl says about the run's course."""
    steps: list[tuple[int, float]] = field(default_factory=list)  # (step, train loss)
    evals: list[dict[str, Any]] = field(default_factory=list)
    start: dict[str, Any] = field(default_factory=dict)
    end: dict[str, Any] = field(default_factory=dict)


def read_history(events: Path) -> History:
    history = History()
    if not events.is_file():
        return history
    with events.open("rb") as lines:
        for line in lines:
            event = decode(line)
            kind = event and event["kind"]
            if kind == "step" and (step := count(event.get("step"))) is not None \
                    and (loss := finite(event.get("loss"))) is not None:
                history.steps.append((step, loss))
            elif kind == "eval" and count(event.get("step")) is not None:
                history.evals.append(event)
            elif kind == "start" and not history.start:
                history.start = event
            elif kind == "end":
                history.end = event
    return history


def setting(config: dict[str, Any], path: str) -> Any:
    group, _, name = path.partition(".")
    return config.get(group, {}).get(name)


def shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value)
    return str(value)


def table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(shown(cell).replace("|", "\\|") for cell in row) + " |"
                    for row in rows]


def final_metrics(history: History) -> list[tuple[str, float]]:
    """Every number of the last evaluation (val_loss, the chosen metric and the others)."""
    if not history.evals:
        return []
    last = history.evals[-1]
    found = [(last.get("metric") if name == "metric_value" else name, measure(value))
             for name, value in last.items() if name not in ("v", "t", "step")]
    return [(str(name), value) for name, value in found if value is not None]


def loss_curve(history: History) -> list[str]:
    """First, lowest and last train loss, then about CURVE_POINTS steps spread over the run,
    and the validation loss of each evaluation."""
    lines: list[str] = []
    if history.steps:
        first, last = history.steps[0], history.steps[-1]
        low = min(history.steps, key=lambda point: point[1])
        summary = (f"Train loss: {first[1]:.4g} at step {first[0]}, lowest {low[1]:.4g} at "
                   f"step {low[0]}, last {last[1]:.4g} at step {last[0]} "
                   f"({len(history.steps)} logged steps).")
        lines += [summary, ""]
        stride = max(1, math.ceil(len(history.steps) / CURVE_POINTS))
        points = history.steps[::stride]
        if points[-1] != last:
            points.append(last)
        lines += table(("step", "train loss"), points) + [""]
    if history.evals:
        lines += table(("step", "val loss", "metric", "value"),
                       [(e.get("step"), measure(e.get("val_loss")), e.get("metric"),
                         measure(e.get("metric_value"))) for e in history.evals]) + [""]
    return lines or ["No loss was logged.", ""]


def front_matter(config: dict[str, Any], adapter: bool) -> list[str]:
    """Hub metadata; base_model only for a hub id (a local folder means nothing elsewhere)."""
    backbone = str(setting(config, "general.backbone") or "")
    problem = setting(config, "general.problem_type") or "causal_lm"
    lines = ["---", f"library_name: {'peft' if adapter else 'transformers'}"]
    if backbone and not Path(backbone).expanduser().exists() and not backbone.startswith(
            (".", "/", "~")):
        lines.append(f"base_model: {backbone}")
    if problem in PIPELINE_TAGS:
        lines.append(f"pipeline_tag: {PIPELINE_TAGS[problem]}")
    lines += ["tags:", "- tui-tune", f"- {setting(config, 'adapter.method')}", "---", ""]
    return lines


def model_card(run_dir: Path, source: Path, what: str, usage: str) -> str:
    """The card's markdown. `what` says what the folder holds ("merged model", "adapter"),
    `usage` is a short Python snippet that loads it."""
    run = RunDir(run_dir)
    config = read_toml(run.config)
    history = read_history(run.events)
    problem = setting(config, "general.problem_type") or "causal_lm"
    method = setting(config, "adapter.method")
    lines = front_matter(config, what == "adapter")
    where = source.relative_to(run.root) if source.is_relative_to(run.root) else source
    intro = (f"Trained with tui-tune from `{setting(config, 'general.backbone')}`: {problem}, "
             f"adapter method {method}. The weights are the run's `{where}` (end status: "
             f"{history.end.get('status', 'unknown')}).")
    lines += [f"# {run.root.name} ({what})", "", intro, "", "## Use", "",
              "```python", usage.strip(), "```", "", "## Settings", ""]
    lora_family = str(method).removeprefix("q") in ("lora", "dora")
    rows = [(path, setting(config, path)) for path in SUMMARY
            if (lora_family or path not in LORA_ONLY) and applies(path, problem)
            and setting(config, path) not in (None, "", [])]
    config_text = run.config.read_text(encoding="utf-8").strip()
    lines += table(("setting", "value"), rows)
    lines += ["", "<details><summary>config.toml</summary>", "", "```toml", config_text, "```",
              "", "</details>", "", "## Data", ""]
    data = [(path, setting(config, path)) for path in DATA if applies(path, problem)
            and setting(config, path) not in (None, "", [])]
    if history.start:
        data += [("training rows", history.start.get("train_rows")),
                 ("validation rows", history.start.get("val_rows"))]
    lines += table(("setting", "value"), data) + ["", "## Final metrics", ""]
    metrics = final_metrics(history)
    if metrics:
        step = history.evals[-1].get("step")
        lines += [f"From the last evaluation, at step {step}:", ""]
        lines += table(("metric", "value"), metrics) + [""]
    else:
        lines += ["The run logged no evaluation.", ""]
    if finite(history.end.get("best_val_loss")) is not None:
        lines += [f"Best validation loss: {finite(history.end.get('best_val_loss')):.6g}.", ""]
    lines += ["## Loss curve", "", *loss_curve(history)]
    return "\n".join(lines).rstrip() + "\n"
