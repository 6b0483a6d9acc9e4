"""`make bench`: every speed and memory goal in one table (see benchmarks/RESULTS.md).

    python -m benchmarks            # the CPU bench (under 10 minutes on 2 cores)
    python -m benchmarks --only cli,follow
    python -m benchmarks --write    # also rewrite the CPU table in benchmarks/RESULTS.md
    python -m benchmarks --gpu      # on a CUDA machine: the ~1B-parameter trainer comparison
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time

from benchmarks.common import ROOT, Result

SECTIONS = ["cli", "app", "follow", "chart", "trainer", "batching", "logging"]
HEADER = "| benchmark | measured | goal | verdict | detail |\n|---|---|---|---|---|"


def run_sections(names: list[str], gpu: bool) -> list[Result]:
    results: list[Result] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        start = time.perf_counter()
        print(f"# {name} ...", file=sys.stderr, flush=True)
        section = module.run_gpu() if gpu else module.run()
        print(f"# {name} done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        for result in section:
            print(result.row(), flush=True)
        results.extend(section)
    return results


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


def write_results(results: list[Result], gpu: bool) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    marker = "<!-- gpu -->" if gpu else "<!-- cpu -->"
    table = "\n".join([marker, f"Measured {time.strftime('%Y-%m-%d')} on {machine(gpu)}.", "",
                       HEADER, *(r.row() for r in results), marker])
    if text.count(marker) == 2:
        head, _, rest = text.partition(marker)
        _, _, tail = rest.partition(marker)
        text = head + table + tail
    else:
        text = text.rstrip() + "\n\n" + table + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--gpu", action="store_true", help="the GPU trainer comparison")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else (["trainer"] if args.gpu else SECTIONS)
    print(HEADER)
    results = run_sections(names, args.gpu)
    if args.write:
        write_results(results, args.gpu)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
