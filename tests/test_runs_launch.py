"""The accelerate command line and the host checks before a launch (no process started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_tune.config.presets import resolve
from tui_tune.runs.launch import plan_launch
from tui_tune.runs.preflight import looks_like_hub_id, preflight


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo" / "data").mkdir(parents=True)
    (tmp_path / "demo" / "data" / "train.jsonl").write_text("{}\n")
    (tmp_path / "demo" / "model").mkdir()
    return tmp_path


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


def test_preflight_accepts_the_demo_and_hub_ids(workdir):
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
