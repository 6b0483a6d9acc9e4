"""Resumable checkpoints: weights (model or adapter), optimizer, scheduler, RNG, sampler position.

A checkpoint is written into step-N.tmp and renamed when complete, so a crash mid-save never
leaves a half checkpoint that resume would pick up.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tui_tune.rundir import CHECKPOINT_STATE, PARTIAL_SUFFIX, RunDir
from tui_tune.runs.files import checkpoint_dirs


@dataclass
class Progress:
    """Where the loop is: enough to continue exactly where it stopped."""
    step: int = 0            # optimizer steps done
    epoch: int = 0           # epoch the next batch comes from
    batch_in_epoch: int = 0  # micro-batches of that epoch this rank has consumed
    seed: int = 0
    best_val_loss: float | None = None
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    world_size: int = 1      # ranks that shared the epoch's batches
    best_step: int | None = None  # checkpoint of the best val loss (policy "best"): never pruned


def rescale_position(progress: Progress, world_size: int) -> bool:
    """Resuming with another number of ranks: keep the global batch position (not exact:
    each epoch's batches are dealt out differently). Returns True when it changed."""
    if progress.world_size == world_size:
        return False
    consumed = progress.batch_in_epoch * progress.world_size
    progress.batch_in_epoch = consumed // world_size
    progress.world_size = world_size
    return True


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, accelerator, model, optimizer, scheduler,
                    progress: Progress, keep: int, adapter, task_state: dict | None = None) -> Path:
    """Every rank calls this (it synchronises); returns the final folder. `adapter` is the
    run's adapter family (adapters/), which saves the trainable weights its way; task_state is
    this rank's Task.rank_state()."""
    final = RunDir(run_dir).checkpoint(progress.step)
    tmp = final.with_name(final.name + PARTIAL_SUFFIX)
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    torch.save(rng_state(), tmp / f"rng-{accelerator.process_index}.pt")
    if task_state:
        torch.save(task_state, tmp / f"task-{accelerator.process_index}.pt")
    if sharded(accelerator):
        accelerator.save_state(str(tmp / "accelerate"))  # gathers shards; every rank takes part
    elif accelerator.is_main_process:
        adapter.save(accelerator.unwrap_model(model, keep_torch_compile=False), tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if accelerator.is_main_process:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / CHECKPOINT_STATE).write_text(json.dumps(asdict(progress), indent=2))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        prune(run_dir, keep, protect=progress.best_step)
    accelerator.wait_for_everyone()
    return final


def sharded(accelerator) -> bool:
    """FSDP and DeepSpeed shard weights and optimizer state: accelerate saves those."""
    return accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")


def save_final_weights(accelerator, model, folder: Path, adapter) -> None:
    """final/: every rank calls this; sharded models are gathered to rank 0 first."""
    state = accelerator.get_state_dict(model) if sharded(accelerator) else None
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        unwrapped = accelerator.unwrap_model(model, keep_torch_compile=False)
        if state is None:
            adapter.save(unwrapped, folder)
        else:
            unwrapped.save_pretrained(folder, state_dict=state, safe_serialization=True)


def prune(run_dir: Path, keep: int, protect: int | None = None) -> None:
    """Delete all but the newest `keep` checkpoints, sparing step-`protect` (the best one)."""
    for old in checkpoint_dirs(run_dir)[:-keep]:
        if old.name != RunDir(run_dir).checkpoint(protect).name:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path, accelerator, model, optimizer, scheduler, adapter,
                    task=None) -> Progress:
    if (folder / "accelerate").is_dir():
        accelerator.load_state(str(folder / "accelerate"))
    else:
        adapter.load(accelerator.unwrap_model(model, keep_torch_compile=False), folder)
        optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=False))
    rng_file = folder / f"rng-{accelerator.process_index}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=False))
    task_file = folder / f"task-{accelerator.process_index}.pt"
    if task is not None and task_file.is_file():
        task.load_rank_state(torch.load(task_file, map_location="cpu", weights_only=False),
                             accelerator.device)
    known = set(Progress.__dataclass_fields__)
    saved = json.loads((folder / CHECKPOINT_STATE).read_text())
    return Progress(**{k: v for k, v in saved.items() if k in known})
