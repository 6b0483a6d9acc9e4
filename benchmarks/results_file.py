"""benchmarks/RESULTS.md: each machine's table between its markers, rewritten or merged."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from benchmarks.common import ROOT, Result

HEADER = "| benchmark | measured | goal | verdict | detail |\n|---|---|---|---|---|"


def machine(gpu: bool) -> str:
    """Where the numbers came from: host, cores, GPU name and the library versions that matter."""
    import os
    from importlib.metadata import PackageNotFoundError, version

    where = f"{platform.node()} ({os.cpu_count()} cores, Python {platform.python_version()})"
    if gpu:
        import torch

        where = f"{torch.cuda.get_device_name()}, {where}"
    libraries = []
    for name in ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "textual"):
        try:
            libraries.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return f"{where}; {', '.join(libraries)}"


def benchmark_of(name: str) -> str:
    """The part of a row's name shared by all rows of one measurement ("trainer gpu dora r16")."""
    return name.partition(":")[0].strip()


def merged_rows(old_section: str, results: list[Result]) -> list[str]:
    """The old table with every row of a re-measured benchmark replaced by the new rows."""
    fresh = {benchmark_of(r.name) for r in results}
    kept = [line for line in old_section.splitlines()
            if line.startswith("| ") and not line.startswith("| benchmark ")
            and benchmark_of(line[2:].split(" | ")[0]) not in fresh]
    return kept + [r.row() for r in results]


def write_results(results: list[Result], gpu: bool, partial: bool = False,
                  path: Path = ROOT / "benchmarks" / "RESULTS.md", where: str = "") -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    marker = "<!-- gpu -->" if gpu else "<!-- cpu -->"
    measured = f"Measured {time.strftime('%Y-%m-%d')} on {where or machine(gpu)}."
    if text.count(marker) == 2:
        head, _, rest = text.partition(marker)
        old, _, tail = rest.partition(marker)
    else:
        head, old, tail = text.rstrip() + "\n\n", "", "\n"
    rows = [r.row() for r in results]
    if partial and old:
        notes = [line for line in old.strip().splitlines() if line.startswith("Measured ")]
        names = ", ".join(sorted({benchmark_of(r.name) for r in results}))
        measured = "\n".join(notes[:1] + [f"{measured[:-1]}: {names}."])
        rows = merged_rows(old, results)
    table = "\n".join([marker, measured, "", HEADER, *rows, marker])
    path.write_text(head + table + tail)
