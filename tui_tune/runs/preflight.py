"""The launch checks: every reason an experiment cannot start on this machine, in one list.

The schema's rules are pure functions of the experiment; these look at the host (files, CUDA,
packages), so a run that cannot start is refused with a message saying which setting to change,
instead of dying in the worker ten seconds later. The launcher asks them under the run's lock
(runs/launch.py) and the worker asks them again before loading anything (train/model.py:
preflight), so a config launched by hand, without the app or the CLI, is refused the same way.
Each side says how many CUDA GPUs it sees: the app through NVML (no torch), the worker through
torch. Nothing here imports torch or accelerate; packages are found without importing them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from tui_tune.config import Experiment, Problem
from tui_tune.config.training_groups import JUDGE_PLACEHOLDERS, JUDGE_TEMPLATES
from tui_tune.monitor.gpu import gpu_count
from tui_tune.runs.accelerate_file import AccelerateFileError, backend_conflict
from tui_tune.runs.backbone_files import backbone_problems
from tui_tune.runs.datafiles import FORMAT_NAMES, DataFileError, check_rows, check_validation_tags
from tui_tune.runs.datasource import NeedsWorker, iter_source_rows, source_layout
from tui_tune.runs.hub_backbone import hub_backbone_problems
from tui_tune.runs.hub_dataset import hub_dataset_problems
from tui_tune.runs.image_rows import images_base
from tui_tune.runs.layouts import layout_note

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
# What accelerate asks before it offers a tracker (accelerate.utils.imports.is_*_available): a
# module it can find whose distribution is installed, as (module, distribution) pairs.
TRACKER_PACKAGES = {"tensorboard": (("tensorboard", "tensorboard"), ("tensorboardX", "tensorboardX")),
                    "wandb": (("wandb", "wandb"),),
                    "mlflow": (("mlflow", "mlflow"), ("mlflow", "mlflow-skinny"))}

Check = Callable[[Experiment, int], list[Problem]]  # (experiment, CUDA GPUs seen) -> problems


def looks_like_hub_id(value: str) -> bool:
    return bool(HUB_ID.match(value)) and ".." not in value


def preflight(exp: Experiment, cuda_devices: int | None = None,
              checks: Iterable[Check] | None = None) -> list[Problem]:
    """Every reason this experiment cannot start here (empty when it can); `checks` defaults to
    all of LAUNCH_CHECKS, the worker passes WORKER_CHECKS."""
    cuda = gpu_count() if cuda_devices is None else cuda_devices
    return [p for check in (LAUNCH_CHECKS if checks is None else checks) for p in check(exp, cuda)]


def members_problems(members: list[Experiment], cuda_devices: int | None = None) -> list[Problem]:
    """The launch checks of every member of a sweep, each problem said once; the data files of
    members that share their dataset settings are read once."""
    cuda = gpu_count() if cuda_devices is None else cuda_devices
    read: list = []
    found: list[Problem] = []
    for member in members:
        checks = LAUNCH_CHECKS if member.dataset not in read else WITHOUT_ROWS
        read.append(member.dataset)
        found += [p for p in preflight(member, cuda, checks) if p not in found]
    return found


def file_problems(exp: Experiment) -> list[Problem]:
    """What the worker would refuse in the files the experiment names: the data files (format,
    columns, cells, encoding), the backbone folder, the other named paths and the accelerate
    file. Also run by `preset validate`."""
    return [p for check in FILE_CHECKS for p in check(exp, 0)]


# -- the files a run names ---------------------------------------------------------------------
def _data_settings(exp: Experiment, cuda: int) -> list[Problem]:
    data = exp.dataset
    problems = []
    if not data.train_file:
        problems.append(Problem("dataset.train_file", f"is empty: name a {FORMAT_NAMES} file "
                                "with one example per row, a dataset folder or a hub dataset "
                                "id (org/name)."))
    if data.validation_strategy == "custom" and not data.validation_file:
        problems.append(Problem("dataset.validation_file", "is needed with validation_"
                                "strategy custom; name a file or use strategy auto."))
    return problems


def _data_rows(exp: Experiment, cuda: int) -> list[Problem]:
    data, kind = exp.dataset, exp.general.problem_type
    problems = []
    if data.train_file:
        problems += data_file_problems(data.train_file, "dataset.train_file", data, kind)
    if data.validation_strategy == "custom" and data.validation_file:
        problems += data_file_problems(data.validation_file, "dataset.validation_file", data,
                                       kind)
        if kind == "token_classification" and data.train_file and not problems:
            problems += validation_tag_problems(data)
    if data.test_file:
        problems += data_file_problems(data.test_file, "dataset.test_file", data, kind,
                                       targets=False)
    return problems


def layout_notes(exp: Experiment) -> list[str]:
    """How dataset.format auto reads each data file, when not as prompt/answer columns: said
    before launch, so a file is never read in a layout the user did not expect unseen."""
    data, notes = exp.dataset, []
    files = [("dataset.train_file", data.train_file)]
    if data.validation_strategy == "custom":
        files.append(("dataset.validation_file", data.validation_file or ""))
    for setting, path in files:
        if path:
            layout = source_layout(path, data, exp.general.problem_type, setting)
            note = layout_note(data, layout, setting)
            notes += [note] if note else []
    return notes


def data_file_problems(path: str, setting: str, dataset, problem_type: str = "causal_lm",
                       targets: bool = True) -> list[Problem]:
    """The file (or dataset folder, or cached hub dataset) read as the worker reads it,
    columns and cells checked (a test file's without its answers or labels: `targets` False).
    A hub dataset that is not cached here is checked by the worker once downloaded (whether it
    can be is _hub_datasets')."""
    try:
        check_rows(iter_source_rows(path, setting, dataset), dataset, problem_type, targets,
                   images_base(path))
    except NeedsWorker:
        return []
    except DataFileError as error:
        return [Problem(error.setting or setting, f"file {path}: {error.message}")]
    return []


def _hub_backbone(exp: Experiment, cuda: int) -> list[Problem]:
    """A hub backbone must be cached or downloadable (a launch check only: it may connect)."""
    backbone = exp.general.backbone
    return hub_backbone_problems(backbone) if looks_like_hub_id(backbone) else []


def _hub_datasets(exp: Experiment, cuda: int) -> list[Problem]:
    """A hub dataset must be in the local datasets cache or downloadable now (it may connect,
    once, a few seconds at most)."""
    data = exp.dataset
    named = [("dataset.train_file", data.train_file), ("dataset.test_file", data.test_file)]
    if data.validation_strategy == "custom":
        named.insert(1, ("dataset.validation_file", data.validation_file or ""))
    found: list[Problem] = []
    for setting, value in named:
        found += [p for p in hub_dataset_problems(value, setting, data) if p not in found]
    return found


def _named_paths(exp: Experiment, cuda: int) -> list[Problem]:
    problems = []
    backbone = exp.general.backbone
    if not Path(backbone).expanduser().is_dir() and not looks_like_hub_id(backbone):
        problems.append(Problem("general.backbone", f"'{backbone}' is neither a directory here "
                                "nor a hub id such as Qwen/Qwen2.5-0.5B."))
    problems += backbone_problems(exp)
    for key, value in (("general.pretrained_weights", exp.general.pretrained_weights),
                       ("environment.accelerate_config", exp.environment.accelerate_config)):
        if value and not Path(value).expanduser().exists():
            problems.append(Problem(key, f"not found: {value}"))
    return problems


def validation_tag_problems(dataset) -> list[Problem]:
    """Token classification: every validation tag is one the training file teaches."""
    try:
        check_validation_tags(iter_source_rows(dataset.train_file, "dataset.train_file",
                                               dataset),
                              iter_source_rows(dataset.validation_file,
                                               "dataset.validation_file", dataset), dataset)
    except NeedsWorker:
        return []
    except DataFileError as error:
        return [Problem("dataset.validation_file",
                        f"file {dataset.validation_file}: {error.message}")]
    return []


def _accelerate_file(exp: Experiment, cuda: int) -> list[Problem]:
    """The accelerate config file must be readable and agree with distributed_backend."""
    env = exp.environment
    if not env.accelerate_config or not Path(env.accelerate_config).expanduser().is_file():
        return []
    try:
        conflict = backend_conflict(env.accelerate_config, env.distributed_backend)
    except AccelerateFileError as error:
        return [Problem("environment.accelerate_config", str(error))]
    return [Problem("environment.distributed_backend", conflict)] if conflict else []


# -- the machine -------------------------------------------------------------------------------
def _cuda_problems(exp: Experiment, cuda: int) -> list[Problem]:
    env, arch = exp.environment, exp.architecture
    if cuda:
        return []
    problems = []
    if env.mixed_precision == "fp16":
        problems.append(Problem("environment.mixed_precision", "fp16 needs a CUDA GPU and "
                                "none is visible: use bf16 or no on this machine."))
    if arch.attn_implementation == "flash_attention_2":
        problems.append(Problem("architecture.attn_implementation", "flash_attention_2 needs "
                                "a CUDA GPU and none is visible: use sdpa."))
    if arch.backbone_dtype == "int8" and exp.adapter.method in ("dora", "qdora"):
        problems.append(Problem("adapter.method", "8-bit DoRA needs a CUDA GPU (bitsandbytes "
                                "fails on the CPU) and none is visible: pick qlora (LoRA on 8 "
                                "bit), or set backbone_dtype to int4 for qdora."))
    return problems


def _gpu_selection(exp: Experiment, cuda: int) -> list[Problem]:
    """The GPUs environment.gpus asks for must exist (the launch hands them out)."""
    gpus = exp.environment.gpus
    if not cuda:
        return []
    if isinstance(gpus, list):
        missing = [g for g in gpus if g >= cuda]
        if missing:
            return [Problem("environment.gpus", f"no GPU with id {missing}: this machine "
                            f"has {cuda} (ids 0-{cuda - 1}).")]
    elif isinstance(gpus, int) and gpus > cuda:
        return [Problem("environment.gpus", f"asks for {gpus} GPUs; this machine has {cuda}.")]
    return []


def _nodes(exp: Experiment, cuda: int) -> list[Problem]:
    env = exp.environment
    if env.num_nodes > 1 and not env.main_process_ip:
        return [Problem("environment.main_process_ip", "multi-node runs need the address of "
                        "node 0.")]
    return []


def _packages(exp: Experiment, cuda: int) -> list[Problem]:
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


def _tracker(exp: Experiment, cuda: int) -> list[Problem]:
    """accelerate silently drops a tracker whose package is missing and has none for neptune:
    say so before loading, instead of a run that reports nowhere."""
    tracker = exp.logging.tracker
    if tracker == "none":
        return []
    if tracker not in TRACKER_PACKAGES:
        return [Problem("logging.tracker", f"accelerate has no {tracker} tracker; pick "
                        "tensorboard, wandb or mlflow (events.jsonl is written whatever the "
                        "tracker).")]
    if not tracker_installed(tracker):
        return [Problem("logging.tracker", f"'{tracker}' needs its package, which is not "
                        f"installed here: pip install {tracker}, or pick none.")]
    return []


def tracker_installed(tracker: str) -> bool:
    """Would accelerate offer this tracker here? Asked as accelerate asks, without importing."""
    return any(_installed(module) and _distribution(name)
               for module, name in TRACKER_PACKAGES.get(tracker, ()))


def _random_weights(exp: Experiment, cuda: int) -> list[Problem]:
    if not exp.architecture.pretrained and exp.architecture.backbone_dtype in ("int4", "int8"):
        return [Problem("architecture.pretrained", "random weights (pretrained = false) cannot "
                        f"be loaded as {exp.architecture.backbone_dtype}: bitsandbytes "
                        "quantizes trained weights. Pick a float backbone_dtype.")]
    return []


def _installed(module: str) -> bool:
    """Is a package importable, found without importing it (no torch in the app process)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _distribution(name: str) -> bool:
    try:
        importlib.metadata.metadata(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _judge(exp: Experiment, cuda: int) -> list[Problem]:
    """metric llm_judge: the key's variable is set here (the worker inherits this
    environment) and the template is a built-in name or a file holding the placeholders."""
    p = exp.prediction
    if p.metric != "llm_judge":
        return []
    out = []
    if p.judge_api_key_env and not os.environ.get(p.judge_api_key_env):
        out.append(Problem("prediction.judge_api_key_env", f"the environment variable "
                           f"{p.judge_api_key_env} is not set (or empty) here: export the "
                           "judge's API key in it before starting the run."))
    if p.judge_template not in JUDGE_TEMPLATES:
        try:
            text = Path(p.judge_template).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            return [*out, Problem("prediction.judge_template", f"neither "
                                  f"{' nor '.join(JUDGE_TEMPLATES)} nor a readable text file "
                                  f"({getattr(error, 'strerror', None) or error}): "
                                  f"{p.judge_template}")]
        missing = [name for name in JUDGE_PLACEHOLDERS if name not in text]
        if missing:
            out.append(Problem("prediction.judge_template", f"{p.judge_template} lacks "
                               f"{', '.join(missing)}; the judge would not see what it "
                               "grades."))
    return out


FILE_CHECKS: tuple[Check, ...] = (_data_settings, _data_rows, _named_paths, _accelerate_file)
LAUNCH_CHECKS: tuple[Check, ...] = (*FILE_CHECKS, _hub_backbone, _hub_datasets, _cuda_problems, _gpu_selection, _nodes,
                                    _packages, _tracker, _random_weights, _judge)
WITHOUT_ROWS = tuple(c for c in LAUNCH_CHECKS if c is not _data_rows)
# The worker asks all but two: its loader reads the data rows with the same reader and the same
# messages, and the GPUs of environment.gpus were handed out by the launch (CUDA_VISIBLE_DEVICES
# renumbers them, so the worker could not judge the ids).
WORKER_CHECKS = tuple(c for c in WITHOUT_ROWS if c is not _gpu_selection)


def visible_cuda_ids(cuda: int) -> list[str]:
    """GPUs this process may use: the entries of CUDA_VISIBLE_DEVICES if set (numbers, or UUIDs
    such as MIG-... on sliced GPUs, kept as written), else every index the driver reports."""
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return [str(i) for i in range(cuda)]
    return [x.strip() for x in raw.split(",") if x.strip()]
