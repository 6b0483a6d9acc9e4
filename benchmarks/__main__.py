"""`make bench`: every speed and memory goal in one table (see benchmarks/RESULTS.md).

    python -m benchmarks            # the CPU bench (under 10 minutes on 2 cores)
    python -m benchmarks --only cli,follow
    python -m benchmarks --write    # also rewrite the CPU table in benchmarks/RESULTS.md
    python -m benchmarks --gpu      # on a CUDA machine: the ~1B-parameter trainer comparison
    python -m benchmarks --gpu --cases dora --write   # one case; its rows replace only theirs

A partial run (--only or --cases) with --write merges: its rows replace the rows of the same
benchmark and every other row stays, so one slow case can be re-measured on its own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from benchmarks.common import Result
from benchmarks.results_file import HEADER, write_results

SECTIONS = ["cli", "app", "follow", "chart", "trainer", "batching", "logging"]


def run_sections(names: list[str], gpu: bool, cases: list[str] | None = None) -> list[Result]:
    results: list[Result] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        start = time.perf_counter()
        print(f"# {name} ...", file=sys.stderr, flush=True)
        chosen = {"cases": cases} if cases and name == "trainer" else {}
        section = module.run_gpu(**chosen) if gpu else module.run(**chosen)
        print(f"# {name} done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        for result in section:
            print(result.row(), flush=True)
        results.extend(section)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--gpu", action="store_true", help="the GPU trainer comparison")
    parser.add_argument("--cases", help="comma-separated trainer cases: a whole label "
                        "('full bf16') or a word of labels ('dora', 'lora' = lora and qlora)")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else (["trainer"] if args.gpu else SECTIONS)
    if args.cases and "trainer" not in names:
        parser.error("--cases chooses trainer cases: add trainer to --only")
    cases = args.cases.split(",") if args.cases else None
    print(HEADER)
    results = run_sections(names, args.gpu, cases)
    if args.write:
        write_results(results, args.gpu, partial=bool(args.only or args.cases))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
