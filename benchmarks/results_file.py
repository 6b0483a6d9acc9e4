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
    """The old table with each re-measured benchmark's rows replaced in place by the new ones
    (a benchmark new to the table goes at the end)."""
    fresh: dict[str, list[str]] = {}
    for result in results:
        fresh.setdefault(benchmark_of(result.name), []).append(result.row())
    rows: list[str] = []
    for line in old_section.splitlines():
        if not line.startswith("| ") or line.startswith("| benchmark "):
            continue
        name = benchmark_of(line[2:].split(" | ")[0])
        if name not in fresh:
            rows.append(line)
        elif fresh[name]:
            rows += fresh[name]
            fresh[name] = []  # placed: its other old rows are dropped
    return rows + [row for left in fresh.values() for row in left]


def write_results(results: list[Result], gpu: bool, partial: bool = False,
                  path: Path = ROOT / "benchmarks" / "RESULTS.md", where: str = "") -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    marker = "<!-- gpu -->" if gpu else "<!-- cpu -->"
    where = where or machine(gpu)
    measured = f"Measured {time.strftime('%Y-%m-%d')} on {where}."
    if text.count(marker) == 2:
        head, _, rest = text.partition(marker)
        old, _, tail = rest.partition(marker)
    else:
        head, old, tail = text.rstrip() + "\n\n", "", "\n"
    rows = [r.row() for r in results]
    if partial and old:
        notes = [line for line in old.strip().splitlines()  # each earlier write's provenance
                 if line.startswith(("Measured ", "Re-measured "))]
        names = ", ".join(sorted({benchmark_of(r.name) for r in results}))
        on = "the same machine" if notes and where in notes[0] else where
        again = f"Re-measured {time.strftime('%Y-%m-%d')} on {on}: {names}."
        measured = "\n".join([*notes, again])
        rows = merged_rows(old, results)
    table = "\n".join([marker, measured, "", HEADER, *rows, marker])
    path.write_text(head + table + tail)
