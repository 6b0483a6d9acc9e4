"""Settings for where and how a run executes (devices, processes, seed) and what it reports."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from tui_tune.config.fields import Group, setting

SECRET_ENV_VARS = {
    "wandb": "WANDB_API_KEY", "neptune": "NEPTUNE_API_TOKEN",
    "mlflow": "MLFLOW_TRACKING_TOKEN", "tensorboard": None, "none": None,
}


class Environment(Group):
    model_config = ConfigDict(title="Environment")

    gpus: list[int] | int | Literal["all"] = Field(
        "all", description="GPUs to use: all, a count (the first N), or a list of ids "
        "such as [0, 2] (set through CUDA_VISIBLE_DEVICES).", json_schema_extra={"advanced": False})
    mixed_precision: Literal["no", "bf16", "fp16"] = setting(
        "bf16", "Autocast precision for the forward pass; master weights stay in backbone_dtype. "
        "On a CPU without bf16 support use no.")
    num_processes: int | None = setting(
        None, "Training processes on this node; empty means one per selected GPU (one on CPU).",
        ge=1, le=1024)
    num_nodes: int = setting(1, "Machines taking part in the run.", ge=1, le=4096)
    node_rank: int = setting(0, "This machine's index among the nodes.", ge=0, advanced=True)
    main_process_ip: str | None = setting(
        None, "Address of node 0 for multi-node runs.", advanced=True)
    main_process_port: int = setting(
        29500, "Port of node 0 for multi-node runs.", ge=1, le=65535, advanced=True)
    distributed_backend: Literal["ddp", "fsdp", "deepspeed"] = setting(
        "ddp", "ddp: a full copy per GPU. fsdp and deepspeed shard the model; their settings come "
        "from an accelerate config file (accelerate_config).")
    accelerate_config: str | None = setting(
        None, "An `accelerate config` YAML file passed to accelerate launch (FSDP, DeepSpeed).")
    find_unused_parameters: bool = setting(
        False, "DDP: tolerate parameters that get no gradient (slower; needed for some models).",
        advanced=True)
    dataloader_workers: int = setting(
        2, "Processes that prepare batches in the background.", ge=0, le=256)
    seed: int = setting(
        -1, "Random seed for data order, splits and weights; -1 picks one and records it.",
        ge=-1, le=2**32 - 1)
    log_all_ranks: bool = setting(
        False, "Let every process write to console.log, not only rank 0.", advanced=True)


class Logging(Group):
    model_config = ConfigDict(title="Logging")

    log_every_steps: int = setting(
        1, "Write a step event every N optimizer steps.", unit="steps", ge=1)
    log_grad_norm: bool = setting(True, "Record the gradient norm (before clipping).")
    tracker: Literal["none", "tensorboard", "wandb", "mlflow", "neptune"] = setting(
        "none", "Also send metrics to an experiment tracker. API keys come only from the "
        "environment (WANDB_API_KEY, NEPTUNE_API_TOKEN, ...), never from presets.")
    project: str = setting("tui-tune", "Tracker project name.")
    run_name: str | None = setting(None, "Tracker run name; empty means the run id.")
