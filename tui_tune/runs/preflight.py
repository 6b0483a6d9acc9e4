"""Checks that depend on this machine (files, CUDA, packages), run before a launch.

The schema's rules are pure functions of the experiment; these look at the host, so a run that
cannot start is refused with a message saying which setting to change, instead of dying in the
worker ten seconds later.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from tui_tune.config import Experiment, Problem
from tui_tune.monitor.gpu import gpu_count
from tui_tune.runs.accelerate_file import AccelerateFileError, backend_conflict
from tui_tune.runs.backbone_files import backbone_problems
from tui_tune.runs.datafiles import FORMAT_NAMES, DataFileError, check_rows, iter_rows

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def looks_like_hub_id(value: str) -> bool:
    return bool(HUB_ID.match(value)) and ".." not in value


def preflight(exp: Experiment, cuda_devices: int | None = None) -> list[Problem]:
    """Every reason this experiment cannot start here (empty when it can)."""
    cuda = gpu_count() if cuda_devices is None else cuda_devices
    return file_problems(exp) + _device_problems(exp, cuda) + _package_problems(exp)


def file_problems(exp: Experiment) -> list[Problem]:
    """What the worker would refuse in the files the experiment names: the data files (format,
    columns, cells, encoding) and the backbone folder. Also run by `preset validate`."""
    problems = []
    data = exp.dataset
    if not data.train_file:
        problems.append(Problem("dataset.train_file", f"is empty: name a {FORMAT_NAMES} file "
                                "with one example per row."))
    else:
        problems += data_file_problems(data.train_file, "dataset.train_file", data,
                                       exp.general.problem_type)
    if data.validation_strategy == "custom":
        if not data.validation_file:
            problems.append(Problem("dataset.validation_file", "is needed with validation_"
                                    "strategy custom; name a file or use strategy auto."))
        else:
            problems += data_file_problems(data.validation_file, "dataset.validation_file",
                                           data, exp.general.problem_type)
    backbone = exp.general.backbone
    if not Path(backbone).expanduser().is_dir() and not looks_like_hub_id(backbone):
        problems.append(Problem("general.backbone", f"'{backbone}' is neither a directory here "
                                "nor a hub id such as Qwen/Qwen2.5-0.5B."))
    problems += backbone_problems(exp)
    for key, value in (("general.pretrained_weights", exp.general.pretrained_weights),
                       ("environment.accelerate_config", exp.environment.accelerate_config)):
        if value and not Path(value).expanduser().exists():
            problems.append(Problem(key, f"not found: {value}"))
    return problems + _accelerate_file_problems(exp)


def data_file_problems(path: str, setting: str, dataset,
                       problem_type: str = "causal_lm") -> list[Problem]:
    """The file read as the worker reads it (the same reader), columns and cells checked."""
    try:
        check_rows(iter_rows(path), dataset, problem_type)
    except DataFileError as error:
        return [Problem(error.setting or setting, f"file {path}: {error.message}")]
    return []


def _accelerate_file_problems(exp: Experiment) -> list[Problem]:
    """The accelerate config file must be readable and agree with distributed_backend."""
    env = exp.environment
    if not env.accelerate_config or not Path(env.accelerate_config).expanduser().is_file():
        return []
    try:
        conflict = backend_conflict(env.accelerate_config, env.distributed_backend)
    except AccelerateFileError as error:
        return [Problem("environment.accelerate_config", str(error))]
    return [Problem("environment.distributed_backend", conflict)] if conflict else []


def _device_problems(exp: Experiment, cuda: int) -> list[Problem]:
    problems = []
    env, arch = exp.environment, exp.architecture
    if not cuda:
        if env.mixed_precision == "fp16":
            problems.append(Problem("environment.mixed_precision", "fp16 needs a CUDA GPU and "
                                    "none is visible: use bf16 or no on this machine."))
        if arch.attn_implementation == "flash_attention_2":
            problems.append(Problem("architecture.attn_implementation", "flash_attention_2 needs "
                                    "a CUDA GPU and none is visible: use sdpa."))
        if arch.backbone_dtype == "int8" and exp.adapter.method in ("dora", "qdora"):
            problems.append(Problem("adapter.method", "DoRA on an 8-bit backbone fails inside "
                                    "bitsandbytes without a CUDA GPU: pick qlora (LoRA on 8 bit) "
                                    "or set backbone_dtype to int4 for qdora."))
    elif isinstance(env.gpus, list):
        missing = [g for g in env.gpus if g >= cuda]
        if missing:
            problems.append(Problem("environment.gpus", f"no GPU with id {missing}: this machine "
                                    f"has {cuda} (ids 0-{cuda - 1})."))
    elif isinstance(env.gpus, int) and env.gpus > cuda:
        problems.append(Problem("environment.gpus", f"asks for {env.gpus} GPUs; this machine "
                                f"has {cuda}."))
    if env.num_nodes > 1 and not env.main_process_ip:
        problems.append(Problem("environment.main_process_ip", "multi-node runs need the "
                                "address of node 0."))
    return problems


def _package_problems(exp: Experiment) -> list[Problem]:
    problems = []
    if exp.environment.distributed_backend == "deepspeed" and not _installed("deepspeed"):
        problems.append(Problem("environment.distributed_backend", "deepspeed is not installed: "
                                "pip install deepspeed, or use fsdp."))
    if exp.architecture.attn_implementation == "flash_attention_2" and not _installed("flash_attn"):
        problems.append(Problem("architecture.attn_implementation", "flash_attention_2 needs "
                                "the flash-attn package: pip install flash-attn, or use sdpa."))
    if exp.architecture.liger_kernel and not _installed("liger_kernel"):
        problems.append(Problem("architecture.liger_kernel", "liger-kernel is not installed: "
                                "pip install liger-kernel, or turn this off."))
    return problems


def _installed(module: str) -> bool:
    """Is a package importable, found without importing it (no torch in the app process)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def visible_cuda_ids(cuda: int) -> list[str]:
    """GPUs this process may use: the entries of CUDA_VISIBLE_DEVICES if set (numbers, or UUIDs
    such as MIG-... on sliced GPUs, kept as written), else every index the driver reports."""
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return [str(i) for i in range(cuda)]
    return [x.strip() for x in raw.split(",") if x.strip()]
