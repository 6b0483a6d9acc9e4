"""The event contract between the training worker (writer) and the app and CLI (readers).

Every line of events.jsonl is one JSON object: {"v": 1, "t": <unix seconds>, "kind": ...}.
Readers ignore unknown kinds and fields, so the contract can grow without breaking old runs.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Self

EVENT_VERSION = 1
END_STATUSES = ("completed", "stopped", "failed", "oom")
CHECKPOINT_REASONS = ("last", "best", "each", "signal", "interval")
OOM_PHASES = ("load", "forward", "backward", "optimizer", "eval")

# kind -> fields every event of that kind carries (more are allowed).
REQUIRED: dict[str, tuple[str, ...]] = {
    "start": ("run_id", "world_size", "devices", "params_total", "params_trainable",
              "steps_total", "train_rows", "val_rows"),
    "step": ("step", "epoch", "loss", "lr", "grad_norm", "tokens", "tokens_per_s",
             "step_time_s", "mem_allocated_gib", "mem_reserved_gib", "mem_peak_gib"),
    "eval": ("step", "val_loss", "metric", "metric_value"),  # causal_lm: perplexity too
    "sample": ("step", "prompt", "generation", "reference"),
    "checkpoint": ("step", "path", "reason"),
    "log": ("level", "message"),
    "end": ("status",),
}
KINDS = tuple(REQUIRED)
# start events also carry `environment`, a dict with these keys (a value is null where unknown,
# e.g. cuda/driver on a CPU box; `gpus` is a list of names). Runs from before it have none.
ENVIRONMENT_FIELDS = ("python", "torch", "cuda", "transformers", "peft", "accelerate",
                      "bitsandbytes", "gpus", "driver", "tui_tune", "git_commit", "git_dirty")


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
    """What makes an event break the contract; unknown kinds are allowed (empty list)."""
    problems = [f"missing {name}" for name in ("v", "t", "kind") if name not in event]
    for name in REQUIRED.get(event.get("kind", ""), ()):
        if name not in event:
            problems.append(f"{event.get('kind')}: missing {name}")
    if event.get("kind") == "end" and event.get("status") not in END_STATUSES:
        problems.append(f"end: status {event.get('status')!r} not in {END_STATUSES}")
    return problems


class EventWriter:
    """Buffered append-only writer: cheap per event, flushed at least once a second.

    A daemon thread flushes on a timer so a slow step never holds events back for long.
    """

    def __init__(self, path: Path, flush_every_s: float = 1.0):
        self.path = Path(path)
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as the writer)
        self._buffer: list[str] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._flush_every_s = flush_every_s
        self._thread = threading.Thread(target=self._flush_loop, daemon=True)
        self._thread.start()

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = make_event(kind, **fields)
        with self._lock:
            self._buffer.append(encode(event))
        if kind in ("end", "checkpoint", "start"):
            self.flush()
        return event

    def flush(self) -> None:
        with self._lock:
            if self._buffer and not self._handle.closed:
                self._handle.write("".join(self._buffer))
                self._handle.flush()
                self._buffer.clear()

    def _flush_loop(self) -> None:
        while not self._closed.wait(self._flush_every_s):
            self.flush()

    def close(self) -> None:
        self.flush()
        self._closed.set()
        with self._lock:
            self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
