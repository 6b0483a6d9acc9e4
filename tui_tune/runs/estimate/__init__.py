"""Before launch: will it fit, and how long will it take (issue 20). Light: no torch, so the
app, the CLI (`tui-tune estimate`) and the worker (the `start` event's mem_estimate_gib) all
use it. `shape` reads the backbone, `memory` counts the peak, `fit` compares it with the
GPUs and finds what would fit, `duration` estimates steps, tokens and time."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tui_tune.runs.estimate.duration import DataSizeError, TimeEstimate, estimate_time
from tui_tune.runs.estimate.fit import Change, GpuFit, changes, gpu_fits, largest_batch
from tui_tune.runs.estimate.memory import MemoryEstimate, Settings, estimate
from tui_tune.runs.estimate.shape import ModelShape, ShapeError, read_shape

__all__ = [
    "Estimate",
    "Settings",
    "ShapeError",
    "estimate",
    "estimate_run",
    "peak_gib",
    "read_shape",
    "world_size",
]


def world_size(exp, visible_gpus: int) -> int:
    """Processes the launch would start: num_processes, else the selected GPUs, x nodes."""
    env = exp.environment
    if env.num_processes:
        per_node = env.num_processes
    elif visible_gpus == 0:
        per_node = 1
    elif isinstance(env.gpus, list):
        per_node = len(env.gpus)
    elif isinstance(env.gpus, int):
        per_node = min(env.gpus, visible_gpus)
    else:
        per_node = visible_gpus
    return max(1, per_node) * env.num_nodes


@dataclass
class Estimate:
    shape: ModelShape
    memory: MemoryEstimate
    budget_gib: float | None  # the smallest GPU (or --gpu-gib) the advice aims at
    gpus: list[GpuFit] = field(default_factory=list)
    no_gpu: str = ""
    changes: list[Change] = field(default_factory=list)
    largest_batch: int | None = None
    time: TimeEstimate | None = None
    time_error: str = ""

    def as_dict(self) -> dict:
        s = self.shape
        out = {"model": {"source": s.source, "model_type": s.model_type,
                         "params": s.total_params, "layers": s.layers, "hidden": s.hidden,
                         "vocab": s.vocab, "exact_counts": bool(s.counted)},
               "memory": self.memory.as_dict(), "budget_gib": self.budget_gib,
               "gpus": [{"index": g.index, "name": g.name, "total_gib": round(g.total_gib, 2),
                         "free_gib": round(g.free_gib, 2), "verdict": g.verdict}
                        for g in self.gpus],
               "largest_batch_size": self.largest_batch,
               "changes": [{"set": c.settings, "total_gib": round(c.total_gib, 2),
                            "saving_gib": round(c.saving_gib, 2), "fits": c.fits,
                            "combined": c.combined}
                           for c in self.changes]}
        if self.no_gpu:
            out["no_gpu"] = self.no_gpu
        out["time"] = self.time.as_dict() if self.time else {"error": self.time_error}
        return out


def estimate_run(exp, readings, no_gpu: str = "", budget_gib: float | None = None,
                 runs_root: Path | None = None, gpus: int | None = None,
                 shape: ModelShape | None = None) -> Estimate:
    """The whole answer for one experiment; ShapeError when the backbone cannot be read.
    `readings`: monitor.gpu.sample_gpus(); `budget_gib` overrides the smallest GPU's total;
    `shape`: the backbone's, when the caller keeps it (the editor reads it once)."""
    shape = shape or read_shape(exp.general.backbone, exp.general.revision)
    settings = Settings.from_experiment(exp, gpus or world_size(exp, len(readings)))
    memory = estimate(shape, settings)
    fits = gpu_fits(memory.total_gib, readings)
    if budget_gib is None and readings:
        budget_gib = min(r.mem_total_gib for r in readings)
    result = Estimate(shape, memory, budget_gib, fits, no_gpu)
    if budget_gib is not None:
        result.largest_batch = largest_batch(shape, settings, budget_gib)
        if memory.total_gib > budget_gib:
            result.changes = changes(shape, settings, budget_gib)
    try:
        result.time = estimate_time(exp, shape, settings,
                                    readings[0].name if readings else "", runs_root)
    except DataSizeError as error:
        result.time_error = str(error)
    return result


def peak_gib(exp, world: int) -> float | None:
    """The estimated peak per GPU (torch's allocated figure) for the start event; None when
    the backbone's config cannot be read: the estimate never stops a run."""
    try:
        return round(estimate(read_shape(exp.general.backbone, exp.general.revision),
                              Settings.from_experiment(exp, world)).peak_gib, 3)
    except (ShapeError, KeyError, ValueError, ZeroDivisionError):
        return None
