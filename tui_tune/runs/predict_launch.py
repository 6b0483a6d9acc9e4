"""How `tui-tune predict` starts the process that predicts: like a run's worker through
`accelerate launch` when several GPUs share the rows, plain python on one device."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from tui_tune.runs.launch import ACCELERATE, PLAIN_CONFIG

PREDICT_MODULE = "tui_tune.train.predict"


def predict_argv(run_dir: Path, file: Path, out: Path, checkpoint: str | None, force: bool,
                 cuda: int, mixed_precision: str = "no") -> list[str]:
    """One process per visible GPU (each predicts every world-th row), else one process."""
    module = ["-m", PREDICT_MODULE, str(Path(run_dir).resolve()), "--file", str(file),
              "--out", str(out), *(["--checkpoint", checkpoint] if checkpoint else []),
              *(["--force"] if force else [])]
    if cuda < 2:
        return [sys.executable, *module]
    return [*ACCELERATE, "--config_file", str(PLAIN_CONFIG), "--gpu_ids", "all", "--multi_gpu",
            "--num_processes", str(cuda), "--num_machines", "1",
            "--mixed_precision", mixed_precision, "--dynamo_backend", "no",
            "--main_process_port", str(_free_port()), *module]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
