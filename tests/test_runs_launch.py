"""The accelerate command line and the host checks before a launch (no process started)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from worker_env import worker_env

from tui_tune.config.presets import resolve
from tui_tune.runs.launch import plan_launch
from tui_tune.runs.preflight import looks_like_hub_id, preflight


@pytest.fixture
def workdir(preset_workdir):
    return preset_workdir


def experiment(*overrides):
    return resolve("demo-tiny", list(overrides)).experiment


def flags(argv: list[str]) -> list[str]:
    """The accelerate options, between the module name and `-m tui_tune.train`."""
    return argv[3:argv.index("tui_tune.train") - 1]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_cpu_one_process_uses_cpu_flag(workdir):
    plan = plan_launch(experiment(), Path("runs/a b"), cuda_devices=0)
    assert "--cpu" in flags(plan.argv) and "--multi_gpu" not in plan.argv
    assert option(plan.argv, "--num_processes") == "1"
    assert plan.argv[-2:] == ["tui_tune.train", str(Path("runs/a b").resolve())]
    assert "CUDA_VISIBLE_DEVICES" not in plan.env_updates


def test_cpu_several_processes_use_multi_gpu_not_cpu(workdir):
    # `--cpu --num_processes 2` silently starts one process
    plan = plan_launch(experiment("environment.num_processes=2"), Path("r"), cuda_devices=0)
    assert "--multi_gpu" in plan.argv and "--cpu" not in plan.argv
    assert option(plan.argv, "--num_processes") == "2"
    assert int(option(plan.argv, "--main_process_port")) > 0  # free port: runs side by side


def test_gpu_selection_precision_and_resume(workdir):
    plan = plan_launch(experiment("environment.gpus=[1, 3]", 'environment.mixed_precision="bf16"'),
                       Path("r"), resume=True, cuda_devices=4)
    assert plan.env_updates["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert option(plan.argv, "--num_processes") == "2" and "--multi_gpu" in plan.argv
    assert option(plan.argv, "--mixed_precision") == "bf16" and "--cpu" not in plan.argv
    assert plan.argv[-1] == "--resume"
    one = plan_launch(experiment("environment.gpus=1"), Path("r"), cuda_devices=4)
    assert one.env_updates["CUDA_VISIBLE_DEVICES"] == "0" and "--multi_gpu" not in one.argv
    swept = plan_launch(experiment(), Path("r"), cuda_devices=4, gpu_ids=[2])
    assert swept.env_updates["CUDA_VISIBLE_DEVICES"] == "2"
    assert option(swept.argv, "--num_processes") == "1"


def test_fsdp_config_file_and_multi_node(workdir):
    (workdir / "fsdp.yaml").write_text("distributed_type: FSDP\n")
    plan = plan_launch(experiment('environment.distributed_backend="fsdp"',
                                  'environment.accelerate_config="fsdp.yaml"',
                                  "environment.num_nodes=2", "environment.node_rank=1",
                                  'environment.main_process_ip="10.0.0.1"',
                                  "environment.num_processes=8"), Path("r"), cuda_devices=8)
    assert "--use_fsdp" in plan.argv and option(plan.argv, "--config_file") == "fsdp.yaml"
    assert option(plan.argv, "--num_processes") == "16"
    assert option(plan.argv, "--num_machines") == "2"
    assert option(plan.argv, "--machine_rank") == "1"
    assert option(plan.argv, "--main_process_ip") == "10.0.0.1"
    assert option(plan.argv, "--main_process_port") == "29500"


def test_preflight_accepts_the_demo_and_hub_ids(workdir, monkeypatch):
    from huggingface_hub import constants
    from test_runs_hub_backbone import cache_model
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(workdir / "hf-cache"))
    cache_model(workdir / "hf-cache", "Qwen/Qwen2.5-0.5B")  # a hub id is checked in the cache
    assert preflight(experiment(), cuda_devices=0) == []
    assert preflight(experiment('general.backbone="Qwen/Qwen2.5-0.5B"'), cuda_devices=0) == []
    assert looks_like_hub_id("gpt2") and not looks_like_hub_id("./models/x")
    assert not looks_like_hub_id("/abs/path") and not looks_like_hub_id("a/b/c")


def problem_keys(exp, cuda):
    return {p.key: p.message for p in preflight(exp, cuda_devices=cuda)}


def test_preflight_names_the_setting_and_what_to_pick(workdir):
    found = problem_keys(experiment('dataset.train_file="nope.jsonl"',
                                    'general.backbone="./models/missing"',
                                    'environment.mixed_precision="fp16"',
                                    'architecture.attn_implementation="flash_attention_2"'), 0)
    assert "nope.jsonl" in found["dataset.train_file"]
    assert "neither a directory" in found["general.backbone"]
    assert "bf16" in found["environment.mixed_precision"]
    assert "sdpa" in found["architecture.attn_implementation"]
    dora8 = problem_keys(experiment('adapter.method="qdora"', 'architecture.backbone_dtype="int8"'),
                         0)
    assert "qlora" in dora8["adapter.method"] and "int4" in dora8["adapter.method"]
    assert "adapter.method" not in problem_keys(
        experiment('adapter.method="qdora"', 'architecture.backbone_dtype="int8"'), 1)
    gpus = problem_keys(experiment("environment.gpus=[0, 5]"), 2)
    assert "[5]" in gpus["environment.gpus"]


FSDP_FILE = """compute_environment: LOCAL_MACHINE
distributed_type: FSDP
fsdp_config:
  fsdp_sharding_strategy: SHARD_GRAD_OP
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
"""
# accelerate's own parsing of our flags, in a subprocess (it imports torch)
ACCELERATE_READS = """import json, sys
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
args, _, _ = _validate_launch_command(launch_command_parser().parse_args(json.loads(sys.argv[1])))
print(json.dumps({"use_fsdp": bool(args.use_fsdp), "multi_gpu": bool(args.multi_gpu),
                  "strategy": getattr(args, "fsdp_sharding_strategy", None),
                  "num_processes": args.num_processes, "mixed_precision": args.mixed_precision,
                  "gpu_ids": args.gpu_ids}))
"""


def accelerate_reads(argv: list[str], cwd: Path, env: dict | None = None) -> dict:
    """How accelerate itself understands the flags of a launch plan."""
    out = subprocess.run([sys.executable, "-c", ACCELERATE_READS, json.dumps(
        flags(argv) + ["-m", "tui_tune.train", "r"])], capture_output=True, text=True,
        check=True, cwd=cwd, env={**os.environ, **(env or {})}).stdout
    return json.loads(out.splitlines()[-1])


def test_accelerate_config_file_reaches_accelerate_with_fsdp(workdir):
    (workdir / "fsdp.yaml").write_text(FSDP_FILE)
    exp = experiment('environment.distributed_backend="fsdp"', "environment.num_processes=2",
                     'environment.accelerate_config="fsdp.yaml"')
    assert preflight(exp, cuda_devices=2) == []
    plan = plan_launch(exp, Path("r"), cuda_devices=2)
    assert accelerate_reads(plan.argv, workdir) == {
        "use_fsdp": True, "multi_gpu": False, "strategy": "SHARD_GRAD_OP", "num_processes": 2,
        "mixed_precision": exp.environment.mixed_precision, "gpu_ids": "all"}


def test_a_default_accelerate_config_cannot_change_the_run(workdir):
    """`accelerate config` leaves a default file that accelerate reads when no file is named:
    it must not turn a one-GPU run into MULTI_GPU or pick other GPUs than CUDA_VISIBLE_DEVICES."""
    (workdir / "hf" / "accelerate").mkdir(parents=True)
    (workdir / "hf" / "accelerate" / "default_config.yaml").write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\ngpu_ids: 0,1\n"
        "num_processes: 2\nmixed_precision: fp16\n")
    plan = plan_launch(experiment("environment.gpus=[3]", 'environment.mixed_precision="bf16"'),
                       Path("r"), cuda_devices=4)
    assert plan.env_updates["CUDA_VISIBLE_DEVICES"] == "3"
    read = accelerate_reads(plan.argv, workdir, {"HF_HOME": str(workdir / "hf")})
    assert (read["multi_gpu"], read["use_fsdp"], read["num_processes"]) == (False, False, 1)
    assert (read["gpu_ids"], read["mixed_precision"]) == ("all", "bf16")
    two = plan_launch(experiment("environment.num_processes=2"), Path("r"), cuda_devices=0)
    read = accelerate_reads(two.argv, workdir, {"HF_HOME": str(workdir / "hf")})
    assert (read["multi_gpu"], read["num_processes"]) == (True, 2)


def test_a_sharding_file_with_the_ddp_backend_is_refused(workdir):
    """`--multi_gpu` beside an FSDP file makes accelerate drop FSDP without a word."""
    (workdir / "fsdp.yaml").write_text(FSDP_FILE)
    found = problem_keys(experiment("environment.num_processes=2",
                                    'environment.accelerate_config="fsdp.yaml"'), 2)
    assert "FSDP" in found["environment.distributed_backend"]
    assert 'distributed_backend = "fsdp"' in found["environment.distributed_backend"]
    (workdir / "ds.json").write_text('{"distributed_type": "DEEPSPEED"}')
    found = problem_keys(experiment('environment.distributed_backend="fsdp"',
                                    "environment.num_processes=2",
                                    'environment.accelerate_config="ds.json"'), 2)
    assert '"deepspeed"' in found["environment.distributed_backend"]
    (workdir / "multi.yaml").write_text("distributed_type: MULTI_GPU\n")
    assert problem_keys(experiment("environment.num_processes=2",
                                   'environment.accelerate_config="multi.yaml"'), 2) == {}
    (workdir / "broken.yaml").write_text("distributed_type: [FSDP\n")
    found = problem_keys(experiment('environment.accelerate_config="broken.yaml"'), 2)
    assert "broken.yaml" in found["environment.accelerate_config"]


def test_multi_node_deepspeed_launches_per_node(workdir):
    sets = ('environment.distributed_backend="deepspeed"', "environment.num_nodes=2",
            'environment.main_process_ip="10.0.0.1"', "environment.num_processes=4")
    plan = plan_launch(experiment(*sets), Path("r"), cuda_devices=4)
    assert option(plan.argv, "--deepspeed_multinode_launcher") == "standard"  # not pdsh/ssh
    assert option(plan.argv, "--num_processes") == "8" and "--use_deepspeed" in plan.argv
    (workdir / "ds.yaml").write_text("distributed_type: DEEPSPEED\ndeepspeed_config:\n"
                                     "  deepspeed_multinode_launcher: openmpi\n")
    chosen = plan_launch(experiment(*sets, 'environment.accelerate_config="ds.yaml"'), Path("r"),
                         cuda_devices=4)
    assert "--deepspeed_multinode_launcher" not in chosen.argv  # the file's choice stands
    one_node = plan_launch(experiment('environment.distributed_backend="deepspeed"',
                                      "environment.num_processes=4"), Path("r"), cuda_devices=4)
    assert "--deepspeed_multinode_launcher" not in one_node.argv


def test_gpu_count_picks_from_cuda_visible_devices_uuids_included(workdir, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-aaa,MIG-bbb")
    one = plan_launch(experiment("environment.gpus=1"), Path("r"), cuda_devices=2)
    assert one.env_updates["CUDA_VISIBLE_DEVICES"] == "MIG-aaa"
    every = plan_launch(experiment(), Path("r"), cuda_devices=2)
    assert "CUDA_VISIBLE_DEVICES" not in every.env_updates  # all: the environment's choice
    assert option(every.argv, "--num_processes") == "2" and "--multi_gpu" in every.argv
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    two = plan_launch(experiment("environment.gpus=2"), Path("r"), cuda_devices=4)
    assert two.env_updates["CUDA_VISIBLE_DEVICES"] == "3,1"


WORKER_HOLDING_THE_LOCK = ("import sys, time\n"
                           "from pathlib import Path\n"
                           "from tui_tune.runs.lock import hold_for_worker\n"
                           "hold_for_worker(Path(sys.argv[1]))\n"
                           "print('ready', flush=True)\n"
                           "time.sleep(120)\n")


def test_a_live_worker_of_the_run_refuses_a_second_launch_until_it_dies(workdir):
    """The lock a worker holds (nothing recorded in run.json) refuses launch and resume; it is
    freed by the kernel when the worker is killed outright."""

    from tui_tune.runs.launch import LaunchError, launch, resume
    from tui_tune.runs.lock import is_held, lock_path
    from tui_tune.runs.store import RunStore

    run_dir = RunStore().create(experiment(), "demo-tiny")
    worker = subprocess.Popen([sys.executable, "-c", WORKER_HOLDING_THE_LOCK, str(run_dir)],
                              stdout=subprocess.PIPE, text=True, env=worker_env())
    try:
        assert worker.stdout.readline().strip() == "ready"
        for start in (launch, resume):
            with pytest.raises(LaunchError, match="is already running") as refused:
                start(run_dir)
            assert run_dir.name in str(refused.value)
        assert not (run_dir / "console.log").exists()  # nothing was started
    finally:
        worker.kill()
        worker.wait()
    assert not is_held(lock_path(run_dir))
