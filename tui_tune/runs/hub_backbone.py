"""Whether a hub backbone can be had here: in the Hugging Face cache, or the hub reachable.

Offline, the worker would otherwise spend a minute in the hub client's retries before failing
with a connection error that does not name the setting. One look at the cache and, only when
the model is not there, one short connection to the hub's host decide it before launch.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from tui_tune.config import Problem

CONNECT_TIMEOUT_S = 3.0
TRUE_WORDS = ("1", "on", "yes", "true")


def hub_backbone_problems(backbone: str) -> list[Problem]:
    """A problem naming general.backbone when this hub id is neither cached nor downloadable
    now (HF_HUB_OFFLINE set, or the hub's host cannot be reached)."""
    if Path(backbone).expanduser().exists():
        return []
    from huggingface_hub import constants, try_to_load_from_cache
    if isinstance(try_to_load_from_cache(backbone, "config.json"), str):
        return []
    why = hub_unavailable()
    if why is None:
        return []
    return [Problem("general.backbone", f"'{backbone}' is a hub model that is not downloaded "
                    f"here (not in {constants.HF_HUB_CACHE}) and cannot be downloaded now "
                    f"({why}): download it once where the hub can be reached "
                    f"(`hf download {backbone}`), or set general.backbone to a local model "
                    "folder (the demo's is demo/model).")]


def hub_unavailable() -> str | None:
    """Why nothing can be downloaded from the hub now (HF_HUB_OFFLINE, or its host cannot be
    reached), or None when it can. Also for hub datasets (runs/hub_dataset.py)."""
    from huggingface_hub import constants
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in TRUE_WORDS:
        return "HF_HUB_OFFLINE is set"
    return unreachable(constants.ENDPOINT)


def unreachable(endpoint: str) -> str | None:
    """Why the hub at `endpoint` cannot be reached (one connection, a few seconds at most),
    or None when it can."""
    url = urlsplit(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as error:
        return f"{host}:{port} cannot be reached: {error.strerror or error}"
