"""What an `accelerate config` file (environment.accelerate_config) says, read without accelerate.

accelerate lets launch flags override the file: `--multi_gpu` next to a file whose
distributed_type is FSDP silently trains plain DDP. So before a launch the file's type is
compared with environment.distributed_backend, and the argv leaves the file's own choices alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# distributed_type in the file -> the distributed_backend setting it needs
SHARDED_TYPES = {"FSDP": "fsdp", "DEEPSPEED": "deepspeed"}


class AccelerateFileError(ValueError):
    """The file is missing or is not an accelerate config (a mapping of settings)."""


def read_accelerate_file(path: str | Path) -> dict[str, Any]:
    """The settings in a YAML or JSON accelerate config file (accelerate reads both)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise AccelerateFileError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise AccelerateFileError(f"{path} is not an accelerate config (expected key: value "
                                  "settings such as distributed_type: FSDP)")
    return data


def backend_conflict(path: str | Path, backend: str) -> str | None:
    """Why the file and distributed_backend disagree, or None when they fit together."""
    data = read_accelerate_file(path)
    file_type = str(data.get("distributed_type") or "").upper()
    needed = SHARDED_TYPES.get(file_type)
    if needed is not None and needed != backend:
        return (f"is {backend}, but {Path(path).name} sets distributed_type: {file_type}, "
                f"which the launch flags would override: set distributed_backend = "
                f"\"{needed}\".")
    return None


def multinode_launcher(data: dict[str, Any]) -> str | None:
    """The DeepSpeed multi-node launcher the file names, if any."""
    section = data.get("deepspeed_config")
    value = section.get("deepspeed_multinode_launcher") if isinstance(section, dict) else None
    return str(value) if value else None
