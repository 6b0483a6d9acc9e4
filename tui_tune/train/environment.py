"""What a run ran on, for its `start` event: Python, torch and CUDA, the libraries that shape
training, the GPUs and their driver, and which tui-tune (version and source commit).

Written at every start, since a resume may run on another machine or install. Each probe is
cheap and never raises: what cannot be found is None (a CPU box has no CUDA or driver).
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import tui_tune

LIBRARIES = ("transformers", "peft", "accelerate", "bitsandbytes")
GIT_TIMEOUT_S = 5.0


def run_environment() -> dict[str, Any]:
    """The `environment` field of a start event (keys: tui_tune.events.ENVIRONMENT_FIELDS)."""
    import torch

    from tui_tune.monitor.gpu import driver_version

    cuda = torch.cuda.is_available()
    commit, dirty = source_commit()
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, **{name: package_version(name) for name in LIBRARIES},
            "gpus": gpu_names() if cuda else [], "driver": driver_version() if cuda else None,
            "tui_tune": tui_tune.__version__, "git_commit": commit, "git_dirty": dirty}


def package_version(name: str) -> str | None:
    """From the installed metadata: no import (bitsandbytes' takes seconds and talks)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def gpu_names() -> list[str]:
    """The CUDA devices this process sees (after CUDA_VISIBLE_DEVICES)."""
    import torch

    try:
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - a broken device must not stop the run from starting
        return []


def source_commit(package: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, has uncommitted changes) of the git checkout tui_tune runs from; (None, None)
    for an installed copy, no git, or anything else that goes wrong."""
    package = (package or Path(tui_tune.__file__).parent).resolve()
    found = _git(package, "rev-parse", "--show-toplevel", "HEAD")
    if found is None or len(found.splitlines()) != 2:
        return None, None
    top, commit = found.splitlines()
    if (Path(top) / package.name).resolve() != package:  # e.g. site-packages inside a repo
        return None, None
    changes = _git(package, "status", "--porcelain", "--untracked-files=no")
    return commit, (bool(changes.strip()) if changes is not None else None)


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              text=True, timeout=GIT_TIMEOUT_S, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout if done.returncode == 0 else None
