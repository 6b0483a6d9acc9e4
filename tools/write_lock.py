"""Write requirements.lock from the environment this Python runs in (`make lock` runs it in a
scratch venv where tui-tune[dev] was just resolved to the newest allowed releases), or with
`--compare requirements.lock` list how this environment differs from it (`make test-latest`).

The lock is a pip constraints file (`pip install -c requirements.lock ...`): every installed
distribution pinned with `==`, so `make install` gets exactly what CI tested. PyTorch is left
out, and so are the CUDA packages that only PyTorch itself requires: `TORCH_SPEC` in the
Makefile pins it, and the same lock must serve its CPU build here and its CUDA build on a GPU
box. The project itself is left out too (it is installed from the checkout).
"""

from __future__ import annotations

import platform
import re
import sys
from importlib import metadata
from pathlib import Path

PROJECT = "tui-tune"
TORCH = "torch"


def canonical(name: str) -> str:
    """PEP 503 name: lowercase, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def torch_companions() -> set[str]:
    """Names PyTorch requires only for its CUDA build (nvidia-*, cuda-*, triton)."""
    try:
        requires = metadata.requires(TORCH) or []
    except metadata.PackageNotFoundError:
        return set()
    names = {canonical(re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0]) for r in requires}
    return {n for n in names if n.startswith(("nvidia-", "cuda-")) or n == "triton"}


def pins() -> dict[str, str]:
    """Every installed distribution but the project, PyTorch and PyTorch's CUDA packages."""
    skipped = {PROJECT, TORCH} | torch_companions()
    found = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    return {name: version for name, version in sorted(found.items()) if name not in skipped}


def lock_text(found: dict[str, str]) -> str:
    torch_version = found_version(TORCH)
    header = [
        "# Exact versions `make install` installs (a pip constraints file: pip install -c).",
        "# Written by `make lock`; do not edit by hand. PyTorch is pinned by TORCH_SPEC in the",
        "# Makefile instead, so this file serves its CPU and CUDA builds alike.",
        (f"# Resolved on Python {platform.python_version()} ({sys.platform}, "
         f"{platform.machine()}) with torch {torch_version}."),
    ]
    return "\n".join(header + [f"{name}=={version}" for name, version in found.items()]) + "\n"


def found_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def read_lock(path: Path) -> dict[str, str]:
    pinned = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[canonical(name)] = version.strip()
    return pinned


def differences(locked: dict[str, str], found: dict[str, str]) -> list[str]:
    """One line per package installed here at another version than the locked one (build-only
    packages such as hatchling are locked but not installed: not a difference)."""
    return [f"{name}: locked {locked.get(name, '-')}, here {version}"
            for name, version in sorted(found.items()) if locked.get(name) != version]


def main() -> None:
    if sys.argv[1:2] == ["--compare"]:
        lock = Path(sys.argv[2] if len(sys.argv) > 2 else "requirements.lock")
        lines = differences(read_lock(lock), pins())
        print(f"torch {found_version(TORCH)}; against {lock}: "
              + (f"{len(lines)} differ" if lines else "all as locked"))
        if lines:
            print("\n".join(lines))
        return
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock")
    found = pins()
    target.write_text(lock_text(found))
    print(f"{target}: {len(found)} packages pinned")


if __name__ == "__main__":
    main()
