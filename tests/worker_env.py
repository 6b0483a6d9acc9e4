"""The environment a worker subprocess needs: its own module, so that test files under tests/
and tests/tui (each with a conftest.py imported as `conftest`) can both import it."""

from __future__ import annotations

import os
from pathlib import Path


def worker_env() -> dict[str, str]:
    """The environment a worker subprocess needs to import this checkout's tui_tune."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env
