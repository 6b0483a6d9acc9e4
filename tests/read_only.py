"""A folder made read-only for the tests' own processes too.

Root ignores permission bits, so as root the folder is bind-mounted read-only onto itself (and
unmounted afterwards); as another user its permission bits are taken away (and restored).
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    folder = Path(folder)
    if os.geteuid() != 0:
        yield from _without_write_bits(folder)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True,
                             text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount as root here: {mounted.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True,
                       capture_output=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True, capture_output=True)


def _without_write_bits(folder: Path) -> Iterator[Path]:
    modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")]}
    write = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    try:
        for path, mode in modes.items():
            path.chmod(mode & ~write)
        yield folder
    finally:
        for path, mode in reversed(modes.items()):
            path.chmod(mode)
