"""How long a run will take: steps and tokens from the dataset, tokens/s from this host's
earlier runs of the same backbone and method, else from a FLOPs model; an ETA range.

Tokens are estimated from characters (every text cell of a row, CHARS_PER_TOKEN characters a
token, capped at max_length): the app has no tokenizer, and English text averages about four
characters per token for the usual BPE vocabularies. A file is read once per process (kept
by path, size and modification time).
"""

from __future__ import annotations

import math
import socket
import statistics
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tui_tune.config.problem_types import step_repeats
from tui_tune.rundir import RunDir
from tui_tune.runs.datafiles import DataFileError
from tui_tune.runs.datasource import iter_source_rows, source_size, split_of
from tui_tune.runs.estimate.memory import Settings
from tui_tune.runs.estimate.shape import ModelShape

CHARS_PER_TOKEN = 4.0
TOKEN_METHOD = f"characters / {CHARS_PER_TOKEN:g}, capped at max_length"
MFU_RANGE = (0.20, 0.40)  # model FLOPs utilisation; the bench measured 15-33% on an H100
PEAK_BF16 = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("B200", 2250e12),
             ("A100", 312e12), ("L40S", 362e12), ("L40", 181e12), ("A10G", 70e12),
             ("A10", 125e12), ("L4", 121e12), ("4090", 165e12), ("3090", 71e12),
             ("A6000", 155e12), ("V100", 125e12), ("T4", 65e12))
ASSUMED_GPU = "H100"
_rows_cache: dict[tuple, tuple[int, list[int]]] = {}


class DataSizeError(Exception):
    """The training file cannot be read (the message names it)."""


def cell_chars(value: object) -> int:
    """Characters of a cell's text, at any depth (chat messages: their contents)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(cell_chars(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(cell_chars(v) for v in value)
    return 0


def row_chars(path: str, ds=None) -> list[int]:
    """Characters per row of a data file (a dataset folder, a cached hub dataset: its split),
    read once per process."""
    try:
        size = source_size(path, ds)
    except OSError as error:
        raise DataSizeError(f"dataset.train_file {path}: {error.strerror or error}") from error
    if size is None:
        raise DataSizeError(f"dataset.train_file {path} is a hub dataset that is not in the "
                            "local datasets cache: its rows are counted by the worker once "
                            "downloaded (the time estimate needs a file, a dataset folder or "
                            "a cached dataset).")
    key = (*size, split_of("dataset.train_file", ds))
    if key not in _rows_cache:
        try:
            chars = [cell_chars(row) for row in iter_source_rows(path, "dataset.train_file", ds)]
        except DataFileError as error:
            raise DataSizeError(f"dataset.train_file {path}: {error}") from error
        _rows_cache.clear()
        _rows_cache[key] = (len(chars), chars)
    return _rows_cache[key][1]


@dataclass(frozen=True)
class DataSize:
    rows: int
    train_rows: int
    mean_tokens: float  # per training example, after max_length
    truncated: int  # rows longer than max_length (estimated)
    method: str = TOKEN_METHOD


def data_size(exp) -> DataSize:
    ds, max_length = exp.dataset, exp.tokenizer.max_length
    chars = row_chars(ds.train_file, ds)
    tokens = [min(max_length, math.ceil(c / CHARS_PER_TOKEN) + 4) for c in chars]
    rows = max(1, int(len(chars) * ds.data_sample)) if ds.data_sample < 1 else len(chars)
    if ds.validation_strategy == "custom":
        train = rows
    else:
        train = rows - max(1, round(rows * ds.validation_size))
    if exp.training.train_on_validation:
        train = rows
    return DataSize(len(chars), max(train, 0), statistics.fmean(tokens) if tokens else 0.0,
                    sum(c / CHARS_PER_TOKEN + 4 > max_length for c in chars))


def plan_steps(exp, train_rows: int, world: int) -> tuple[int, int]:
    """(steps in all, steps per epoch), as the worker plans them (train/setup.py)."""
    t = exp.training
    per_epoch = max(((train_rows // t.batch_size) // world) // t.grad_accumulation, 0)
    per_epoch *= step_repeats(exp)
    return (t.max_steps or max(1, math.ceil(t.epochs * per_epoch))), per_epoch


@dataclass(frozen=True)
class Throughput:
    low: float  # tokens/s, all GPUs together
    high: float
    source: str


def peak_flops(gpu_name: str) -> tuple[float, str]:
    for name, flops in PEAK_BF16:
        if name.lower() in gpu_name.lower():
            return flops, name
    return dict(PEAK_BF16)[ASSUMED_GPU], f"{ASSUMED_GPU} (assumed)"


def flops_per_token(shape: ModelShape, s: Settings) -> float:
    """Work per trained token: 2 x weights forward, 2 x backward through the activations,
    2 x more for weight gradients (full) and 2 x more recomputing (checkpointing); attention
    12 x layers x q_dim x length (PaLM's convention)."""
    p = shape.params_per_token
    passes = 6 if s.method in ("full",) else 4
    if s.gradient_checkpointing:
        passes += 2
    return passes * p + 12 * shape.layers * shape.q_dim * s.max_length * (passes / 6)


def flops_throughput(shape: ModelShape, s: Settings, gpu_name: str) -> Throughput:
    flops, name = peak_flops(gpu_name)
    per_token = flops_per_token(shape, s)
    low, high = (m * flops * s.world_size / per_token for m in MFU_RANGE)
    return Throughput(low, high, f"FLOPs model: {per_token / 1e9:.1f} GFLOP/token on "
                      f"{s.world_size} x {name} at {peak_text(flops)}, MFU "
                      f"{MFU_RANGE[0]:.0%}-{MFU_RANGE[1]:.0%}")


def peak_text(flops: float) -> str:
    return f"{flops / 1e12:.0f} TFLOP/s bf16"


def earlier_runs(root: Path, exp, host: str | None = None) -> Throughput | None:
    """tokens/s of this host's earlier runs of the same backbone and method (their latest
    step event), or None when there are none."""
    from tui_tune.runs.files import read_json
    from tui_tune.runs.store import RunStore

    host = host or socket.gethostname()
    store = RunStore(root)
    speeds = []
    for run_dir in store.run_dirs():
        paths = RunDir(run_dir)
        info = read_json(paths.run_json) or {}
        if info.get("host") not in (None, host):
            continue
        try:
            config = tomllib.loads(paths.config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        general, adapter = config.get("general", {}), config.get("adapter", {})
        if general.get("backbone") != str(exp.general.backbone) \
                or adapter.get("method", "lora") != exp.adapter.method:
            continue
        speed = store.summary(run_dir).tokens_per_s
        if speed and speed > 0 and math.isfinite(speed):
            speeds.append(speed)
    if not speeds:
        return None
    return Throughput(min(speeds), max(speeds), f"{len(speeds)} earlier run"
                      f"{'s' if len(speeds) > 1 else ''} of {exp.general.backbone} "
                      f"({exp.adapter.method}) on this host")


@dataclass(frozen=True)
class TimeEstimate:
    data: DataSize
    steps: int
    steps_per_epoch: int
    tokens: float  # trained tokens in all
    speed: Throughput

    @property
    def seconds(self) -> tuple[float, float]:
        return self.tokens / self.speed.high, self.tokens / self.speed.low

    def as_dict(self) -> dict:
        fast, slow = self.seconds
        return {"rows": self.data.rows, "train_rows": self.data.train_rows,
                "mean_tokens_per_row": round(self.data.mean_tokens, 1),
                "truncated_rows": self.data.truncated, "token_method": self.data.method,
                "steps": self.steps, "steps_per_epoch": self.steps_per_epoch,
                "tokens": round(self.tokens), "tokens_per_s": [round(self.speed.low),
                                                               round(self.speed.high)],
                "speed_source": self.speed.source, "eta_s": [round(fast), round(slow)]}


def estimate_time(exp, shape: ModelShape, s: Settings, gpu_name: str,
                  runs_root: Path | None) -> TimeEstimate:
    data = data_size(exp)
    steps, per_epoch = plan_steps(exp, data.train_rows, s.world_size)
    t = exp.training
    tokens = steps * t.batch_size * t.grad_accumulation * s.world_size * data.mean_tokens
    speed = earlier_runs(runs_root, exp) if runs_root is not None else None
    return TimeEstimate(data, steps, per_epoch, tokens,
                        speed or flops_throughput(shape, s, gpu_name))
