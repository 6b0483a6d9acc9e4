"""Building a training session: config, accelerator, seed, data, model, optimizer, checkpoint."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from tui_tune.config import ConfigError, validate_experiment
from tui_tune.config.problem_types import UNUSED_WEIGHT_TYPES, step_repeats
from tui_tune.config.toml_io import read_toml
from tui_tune.rundir import CHECKPOINT_STATE, RunDir
from tui_tune.runs.files import newest_checkpoint
from tui_tune.train.adapters import family_for
from tui_tune.train.checkpoint import Progress, load_checkpoint, rescale_position
from tui_tune.train.collate import steps_per_epoch
from tui_tune.train.data import SplitData
from tui_tune.train.environment import run_environment
from tui_tune.train.errors import UserError
from tui_tune.train.model import (
    add_augmentation_hooks,
    load_backbone,
    load_tokenizer,
    parameter_counts,
    preflight,
    speedups,
)
from tui_tune.train.optim import make_optimizer, make_scheduler
from tui_tune.train.reporting import Reporter, update_run_json
from tui_tune.train.sinks import Sink, sinks_for
from tui_tune.train.tasks import Task, task_for


@dataclass
class Session:
    exp: Any
    task: Task  # the problem type (tasks/)
    adapter: ModuleType  # the adapter method's family (adapters/)
    run_dir: Path
    accelerator: Any
    model: Any
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    data: SplitData
    reporter: Reporter
    progress: Progress
    steps_total: int
    steps_per_epoch: int
    param_counts: tuple[int, int]
    all_params: list  # listed once, after prepare: a peft model's parameters() walk is ~0.5 ms
    resumed_from: Path | None = None
    step_lr: float = 0.0  # learning rate of the main parameter group at the last step
    sinks: list[Sink] = field(default_factory=list)  # where step/eval/sample records go


def read_experiment(run_dir: Path):
    try:
        return validate_experiment(read_toml(RunDir(run_dir).config))
    except ConfigError as error:
        raise UserError(str(error), file=str(RunDir(run_dir).config)) from error


def make_accelerator(exp, run_dir: Path):
    """cpu=True without CUDA: under `accelerate launch --multi_gpu` that gives gloo ranks."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    tracker = exp.logging.tracker
    ddp = DistributedDataParallelKwargs(
        find_unused_parameters=exp.environment.find_unused_parameters
        or exp.general.problem_type in UNUSED_WEIGHT_TYPES)
    return Accelerator(cpu=not torch.cuda.is_available(),
                       mixed_precision=exp.environment.mixed_precision,
                       log_with=None if tracker == "none" else tracker,
                       project_dir=str(run_dir / "trackers"), kwargs_handlers=[ddp])


def start_trackers(accelerator, exp, run_dir: Path) -> None:
    """Experiment trackers through accelerate; their secrets come from the environment only."""
    if exp.logging.tracker == "none":
        return
    from tui_tune.config import experiment_dict

    config = {f"{group}.{key}": value for group, values in experiment_dict(exp).items()
              if isinstance(values, dict) for key, value in values.items()
              if isinstance(value, (int, float, str, bool))}
    name = exp.logging.run_name or run_dir.name
    init = {"wandb": {"name": name}, "mlflow": {"run_name": name}}.get(exp.logging.tracker, {})
    accelerator.init_trackers(exp.logging.project, config=config,
                              init_kwargs={exp.logging.tracker: init} if init else {})


def agree_on_seed(accelerator, asked: int, checkpoint: Path | None) -> int:
    """The asked seed; -1 draws one on rank 0 (or reuses the checkpoint's) and shares it."""
    if checkpoint is not None:
        from json import loads
        return int(loads((checkpoint / CHECKPOINT_STATE).read_text())["seed"])
    if asked >= 0:
        return asked
    from accelerate.utils import broadcast_object_list

    seed = [secrets.randbelow(2**31) if accelerator.is_main_process else 0]
    if accelerator.num_processes > 1:
        broadcast_object_list(seed, from_process=0)
    return int(seed[0])


def plan_steps(exp, n_train: int, world: int) -> tuple[int, int]:
    t = exp.training
    per_epoch = steps_per_epoch(n_train, t.batch_size, world, t.grad_accumulation)
    per_epoch *= step_repeats(exp)
    if per_epoch == 0:
        raise UserError(f"{n_train} training rows make no full batch of {t.batch_size} x "
                        f"{t.grad_accumulation} accumulation x {world} processes; lower "
                        "batch_size or add rows.", "training.batch_size", exp.dataset.train_file)
    total = t.max_steps or max(1, math.ceil(t.epochs * per_epoch))
    return total, per_epoch


def build_session(run_dir: Path, resume: bool, reporter: Reporter) -> Session:
    from accelerate.utils import set_seed

    exp = read_experiment(run_dir)
    preflight(exp)
    task, adapter = task_for(exp), family_for(exp.adapter.method)
    accelerator = make_accelerator(exp, Path(run_dir))
    checkpoint = newest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        reporter.log("resume: no checkpoint found, starting from the beginning", "warning")
    seed = agree_on_seed(accelerator, exp.environment.seed, checkpoint)
    set_seed(seed)
    if accelerator.is_main_process:
        update_run_json(run_dir, seed=seed, status="running", world_size=accelerator.num_processes)
    start_trackers(accelerator, exp, Path(run_dir))
    tokenizer = load_tokenizer(exp)
    data = task.load_data(exp, tokenizer, seed)
    steps_total, per_epoch = plan_steps(exp, len(data.train), accelerator.num_processes)
    reporter.log(f"data: {len(data.train)} training and {len(data.val)} validation examples, "
                 f"{steps_total} steps of {per_epoch} per epoch")
    for warning in data.warnings:
        reporter.log(warning, "warning")
    model = adapter.apply(load_backbone(exp, tokenizer, accelerator.device, data), exp, task)
    add_augmentation_hooks(model, exp)
    model = speedups(model, exp, reporter)
    optimizer = make_optimizer(model, exp.training, accelerator.device.type == "cuda")
    scheduler = make_scheduler(optimizer, exp.training, steps_total, per_epoch)
    counts = parameter_counts(model)  # before wrapping: FSDP flattens parameters
    model, optimizer = accelerator.prepare(model, optimizer)
    progress = Progress(seed=seed, world_size=accelerator.num_processes)
    if checkpoint is not None:
        progress = load_checkpoint(checkpoint, accelerator, model, optimizer, scheduler,
                                   adapter, task)
        reporter.log(f"resumed from {checkpoint.name} (step {progress.step})")
        if rescale_position(progress, accelerator.num_processes):
            reporter.log("resumed with another number of processes: the data order of the "
                         "current epoch differs from an uninterrupted run", "warning")
    session = Session(exp, task, adapter, Path(run_dir), accelerator, model, tokenizer, optimizer,
                      scheduler, data, reporter, progress, steps_total, per_epoch, counts,
                      list(model.parameters()), checkpoint,
                      sinks=sinks_for(exp, reporter, accelerator, steps_total))
    task.before_training(session)
    return session


def devices(accelerator) -> list[str]:
    if accelerator.device.type == "cuda":
        return [torch.cuda.get_device_name(accelerator.device)] * accelerator.num_processes
    return ["cpu"] * accelerator.num_processes


def start_event(session: Session) -> None:
    """The start event (rank 0), and each rank's world size and data shard in its rank file."""
    from tui_tune.runs.estimate import peak_gib
    from tui_tune.train.collate import epoch_batches, rank_batches

    acc, t = session.accelerator, session.exp.training
    plan = epoch_batches([len(e) for e in session.data.train], t.batch_size,
                         session.progress.seed, 0, t.group_by_length, acc.num_processes)
    mine = rank_batches(plan, acc.process_index, acc.num_processes)
    session.reporter.write_rank_file(world_size=acc.num_processes, device=str(acc.device),
                                     first_batch=mine[0] if mine else [])
    total, trainable = session.param_counts
    exp = session.exp
    session.reporter.event(
        "start", run_id=session.run_dir.name, world_size=session.accelerator.num_processes,
        devices=devices(session.accelerator), params_total=total, params_trainable=trainable,
        steps_total=session.steps_total, train_rows=len(session.data.train),
        val_rows=len(session.data.val), seed=session.progress.seed,
        steps_per_epoch=session.steps_per_epoch, method=exp.adapter.method,
        resumed_from_step=session.progress.step if session.resumed_from else None,
        mixed_precision=exp.environment.mixed_precision,
        environment=run_environment() if session.reporter.is_main else None,
        mem_estimate_gib=peak_gib(exp, acc.num_processes))
