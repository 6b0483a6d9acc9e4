"""Start a run as a detached `accelerate launch` process that outlives the app and the shell.

The argv is a list (never a shell string), the process gets its own session, reads /dev/null
and writes console.log, so closing the terminal, losing SSH or Ctrl-C in the app leave it alone.
Without CUDA, one process runs with `--cpu` and several with `--multi_gpu` (the worker then uses
Accelerator(cpu=True) with gloo), because `--cpu --num_processes 2` silently starts one process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tui_tune.config import ConfigError, Experiment, Problem, validate_experiment
from tui_tune.config.toml_io import read_toml
from tui_tune.monitor.gpu import gpu_count
from tui_tune.rundir import RunDir
from tui_tune.runs.accelerate_file import (
    AccelerateFileError,
    multinode_launcher,
    read_accelerate_file,
)
from tui_tune.runs.children import adopt, reap_children
from tui_tune.runs.files import read_run_json, update_run_json
from tui_tune.runs.lock import LOCK_ENV, RunLocked, lock_path, share, take_for_launch
from tui_tune.runs.preflight import preflight, visible_cuda_ids
from tui_tune.runs.procs import main_processes, marker_env, start_time

ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]
PLAIN_CONFIG = Path(__file__).with_name("accelerate_plain.yaml")  # shields from a default config


class LaunchError(Exception):
    """The run cannot be started; `problems` say which setting or file to fix."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class LaunchPlan:
    argv: list[str]
    env_updates: dict[str, str]  # CUDA_VISIBLE_DEVICES and friends
    num_processes: int
    cuda: bool


def load_experiment(run_dir: Path) -> Experiment:
    path = RunDir(run_dir).config
    try:
        return validate_experiment(read_toml(path))
    except ConfigError as error:
        raise error.with_source(str(path)) from None


def _selected_gpus(exp: Experiment, cuda: int) -> list[int | str] | None:
    """GPU ids for CUDA_VISIBLE_DEVICES, or None to leave the environment's choice alone."""
    gpus = exp.environment.gpus
    if gpus == "all":
        return None
    if isinstance(gpus, int):
        return list(visible_cuda_ids(cuda)[:gpus])
    return list(gpus)


def plan_launch(exp: Experiment, run_dir: Path, resume: bool = False,
                cuda_devices: int | None = None, gpu_ids: list[int] | None = None) -> LaunchPlan:
    """The accelerate argv and environment for this experiment on this machine.

    gpu_ids overrides environment.gpus (a sweep runner gives each run its own GPU).
    """
    env = exp.environment
    cuda = gpu_count() if cuda_devices is None else cuda_devices
    selected = (gpu_ids if gpu_ids is not None else _selected_gpus(exp, cuda)) if cuda else None
    if gpu_ids is not None and cuda:
        per_node = len(gpu_ids)
    else:
        per_node = env.num_processes or ((len(selected) if selected is not None
                                          else len(visible_cuda_ids(cuda))) if cuda else 1) or 1
    argv = [*ACCELERATE, "--config_file", env.accelerate_config or str(PLAIN_CONFIG)]
    if cuda:
        argv += ["--gpu_ids", "all"]  # GPUs are chosen by CUDA_VISIBLE_DEVICES, never by a file
    if env.distributed_backend == "fsdp":
        argv.append("--use_fsdp")
    elif env.distributed_backend == "deepspeed":
        argv.append("--use_deepspeed")
    elif per_node * env.num_nodes > 1:
        argv.append("--multi_gpu")
    elif not cuda:
        argv.append("--cpu")
    argv += _deepspeed_multinode(exp)
    if not cuda:
        threads = max(1, (os.cpu_count() or 1) // per_node)
        argv += ["--num_cpu_threads_per_process", str(threads)]
    argv += ["--num_processes", str(per_node * env.num_nodes),
             "--num_machines", str(env.num_nodes),
             "--mixed_precision", env.mixed_precision, "--dynamo_backend", "no"]
    if env.num_nodes > 1:
        argv += ["--machine_rank", str(env.node_rank),
                 "--main_process_ip", str(env.main_process_ip),
                 "--main_process_port", str(env.main_process_port)]
    elif per_node > 1:
        argv += ["--main_process_port", str(_free_port())]  # concurrent runs must not collide
    argv += ["-m", "tui_tune.train", str(Path(run_dir).resolve())]
    if resume:
        argv.append("--resume")
    updates = {"PYTHONUNBUFFERED": "1"}
    if selected is not None:
        updates["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in selected)
    return LaunchPlan(argv, updates, per_node, bool(cuda))


def _deepspeed_multinode(exp: Experiment) -> list[str]:
    """Every node runs its own launch (node_rank), so DeepSpeed must not use its default pdsh
    launcher, which would ssh into all nodes from each one; an explicit choice in the file wins."""
    env = exp.environment
    if env.distributed_backend != "deepspeed" or env.num_nodes < 2:
        return []
    if env.accelerate_config:
        try:
            if multinode_launcher(read_accelerate_file(env.accelerate_config)):
                return []
        except AccelerateFileError:
            pass  # preflight reports the file
    return ["--deepspeed_multinode_launcher", "standard"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(run_dir: Path, resume: bool = False, gpu_ids: list[int] | None = None) -> int:
    """Start the run detached and return the launcher pid; LaunchError if it cannot start,
    including when another launch or worker of this run is alive (the run's lock says so)."""
    run_dir = Path(run_dir).resolve()
    try:
        exp = load_experiment(run_dir)
    except ConfigError as error:
        raise LaunchError(error.problems) from None
    node = exp.environment.node_rank if exp.environment.num_nodes > 1 else None
    lock = lock_path(run_dir, node)
    try:
        fd = take_for_launch(lock)
    except RunLocked:
        raise LaunchError([_already_running(run_dir, lock)]) from None
    try:  # check and spawn under the lock: a concurrent launch cannot slip in between
        if main_processes(run_dir):
            raise LaunchError([_already_running(run_dir, lock)])
        problems = preflight(exp)
        if problems:
            raise LaunchError(problems)
        plan = plan_launch(exp, run_dir, resume=resume, gpu_ids=gpu_ids)
        plan.env_updates.update(marker_env(run_dir))
        plan.env_updates[LOCK_ENV] = str(lock)
        for stale in RunDir(run_dir).rank_files():
            stale.unlink(missing_ok=True)  # the previous launch's ranks
        return _start(run_dir, plan, resume, lock_fd=fd)
    finally:
        os.close(fd)  # the launcher keeps its own copy of the (then shared) lock


def _already_running(run_dir: Path, lock: Path) -> Problem:
    return Problem("", f"{run_dir.name} is already running (a launcher or worker of it holds "
                   f"{lock}); stop it first (`tui-tune stop {run_dir.name}`) or wait for it.")


def _start(run_dir: Path, plan: LaunchPlan, resume: bool, lock_fd: int) -> int:
    launched_at = time.time()
    env = {**os.environ, **plan.env_updates}
    with open(RunDir(run_dir).console_log, "ab") as log:
        log.write(f"\n=== tui-tune {'resume' if resume else 'launch'} at "
                  f"{_utc(launched_at)}: {' '.join(plan.argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(plan.argv, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                   close_fds=True, pass_fds=(lock_fd,))
    adopt(process)
    previous = read_run_json(run_dir)
    update_run_json(run_dir, argv=plan.argv, pid=process.pid, pgid=process.pid,
                    pid_start_time=start_time(process.pid) or launched_at,
                    host=socket.gethostname(), launched_at=launched_at,
                    launched_at_utc=_utc(launched_at), status="running", ended_at=None,
                    reason=None, launches=int(previous.get("launches", 0)) + 1,
                    num_processes=plan.num_processes,
                    cuda_visible_devices=plan.env_updates.get("CUDA_VISIBLE_DEVICES"))
    share(lock_fd)  # recorded: now the workers may take it too
    reap_children()
    return process.pid


class NothingToResume(Exception):
    """A completed run: its final/ is written; resuming would train again and rewrite it."""


def resume(run_dir: Path) -> int:
    """Relaunch in the same directory; the worker continues from the newest checkpoint. A
    completed run is refused (NothingToResume): "new run from its weights" trains it on."""
    from tui_tune.runs.status import run_status
    if run_status(run_dir) == "completed":
        raise NothingToResume(f"{Path(run_dir).name}: completed; nothing to resume (a new run "
                              "from its weights trains it further: `f` in the app, or "
                              "general.pretrained_weights).")
    return launch(run_dir, resume=True)


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
