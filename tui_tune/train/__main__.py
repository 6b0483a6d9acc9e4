"""`python -m tui_tune.train RUN_DIR [--resume]`: the worker that `accelerate launch` runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tui_tune.train",
                                     description="Train the run whose config.toml is in RUN_DIR.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint, appending to events.jsonl")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from tui_tune.train.worker import run_worker

    return run_worker(args.run_dir, args.resume)


if __name__ == "__main__":
    raise SystemExit(main())
