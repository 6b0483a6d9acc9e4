"""benchmarks/RESULTS.md: each machine's table between its markers, rewritten or merged.

Between its markers a machine's section holds provenance lines, then the table. The writer owns
the table and the provenance lines in its own two formats ("Measured DATE on WHERE." from a
whole run, "Re-measured DATE on WHERE: NAMES." from a partial one); a later write replaces
them (a partial one only the names it re-measured). Every other line there, such as a note
added by hand, is kept as it is, in its place."""

from __future__ import annotations

import platform
import re
import time
from pathlib import Path

from benchmarks.common import ROOT, Result

HEADER = "| benchmark | measured | goal | verdict | detail |\n|---|---|---|---|---|"
MEASURED = re.compile(r"Measured \d{4}-\d{2}-\d{2} on .+\.")
REMEASURED = re.compile(r"(Re-measured \d{4}-\d{2}-\d{2} on .+?): (.+)\.")


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


def is_row(line: str) -> bool:
    return line.startswith(("| ", "|---"))


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


def listed_names(text: str, known: set[str]) -> list[str] | None:
    """The benchmarks in `text` as a partial write lists them (names joined by ", ", which
    names contain too: "runs screen, 1,000 runs"), or None when it is not such a list."""
    if text in known:
        return [text]
    for name in sorted(known, key=len, reverse=True):
        if text.startswith(name + ", "):
            rest = listed_names(text[len(name) + 2:], known)
            if rest is not None:
                return [name, *rest]
    return None


def names_line(names: list[str]) -> str:
    return ", ".join(names)


def kept_notes(old: str, remeasured: set[str], known: set[str], whole: bool) -> list[str]:
    """The section's lines above and below the table that stay: every line the writer did not
    write; of its own, those a partial write leaves true (a "Re-measured" line loses the names
    measured again, and goes when none are left); a whole write replaces all of its own."""
    kept: list[str] = []
    for line in old.strip("\n").splitlines():
        if is_row(line):
            continue
        own = REMEASURED.fullmatch(line)
        names = listed_names(own.group(2), known) if own else None
        if names is not None:
            left = [n for n in names if n not in remeasured]
            if left and not whole:
                kept.append(f"{own.group(1)}: {names_line(left)}.")
        elif not (MEASURED.fullmatch(line) and whole):
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def write_results(results: list[Result], gpu: bool, partial: bool = False,
                  path: Path = ROOT / "benchmarks" / "RESULTS.md", where: str = "") -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    marker = "<!-- gpu -->" if gpu else "<!-- cpu -->"
    where = where or machine(gpu)
    today = time.strftime("%Y-%m-%d")
    if text.count(marker) == 2:
        head, _, rest = text.partition(marker)
        old, _, tail = rest.partition(marker)
    else:
        head, old, tail = text.rstrip() + "\n\n", "", "\n"
    whole = not (partial and old)
    names = list(dict.fromkeys(benchmark_of(r.name) for r in results))
    known = {benchmark_of(line[2:].split(" | ")[0]) for line in old.splitlines()
             if line.startswith("| ") and not line.startswith("| benchmark ")} | set(names)
    above, below = _split_at_table(old)
    notes = kept_notes(above, set(names), known, whole)
    if whole:
        rows = [r.row() for r in results]
        notes = [f"Measured {today} on {where}.", *notes]
    else:
        first = next((line for line in notes if MEASURED.fullmatch(line)), "")
        on = "the same machine" if first and where in first else where
        notes.append(f"Re-measured {today} on {on}: {names_line(names)}.")
        rows = merged_rows(old, results)
    after = kept_notes(below, set(names), known, whole)
    table = "\n".join([marker, *notes, "", HEADER, *rows, *([""] + after if after else []),
                       marker])
    path.write_text(head + table + tail)


def _split_at_table(section: str) -> tuple[str, str]:
    """The section's text above its table and below it."""
    lines = section.splitlines()
    rows = [i for i, line in enumerate(lines) if is_row(line)]
    if not rows:
        return section, ""
    return "\n".join(lines[:rows[0]]), "\n".join(lines[rows[-1] + 1:])
