"""`python -m tui_tune.train RUN_DIR [--resume]`: the worker that `accelerate launch` runs."""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path

from tui_tune.config.model_groups import QUANTIZED_METHODS
from tui_tune.rundir import RunDir


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tui_tune.train",
                                     description="Train the run whose config.toml is in RUN_DIR.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint, appending to events.jsonl")
    return parser.parse_args(argv)


def compiler_unused(run_dir: Path) -> bool:
    """Does the run leave torch's compiler alone: no architecture.compile and no bitsandbytes
    quantization (whose CPU kernels go through torch.compile)? Unknown counts as no."""
    try:
        config = tomllib.loads(RunDir(run_dir).config.read_text(encoding="utf-8"))
        architecture, adapter = config["architecture"], config["adapter"]
        return (architecture["compile"] is False
                and architecture["backbone_dtype"] in ("float32", "bfloat16", "float16")
                and adapter["method"] not in QUANTIZED_METHODS)
    except (OSError, ValueError, KeyError, TypeError):
        return False  # the worker reports a config it cannot read


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if compiler_unused(args.run_dir):
        # bitsandbytes (imported by peft whenever it is installed) wraps its kernels in
        # torch.compile at import, which imports torch's compiler stack: 1.5-2 s of every
        # worker start on a 2-core box, for a run that never compiles (measured: bench row
        # "worker start"). Disabled only for such runs; the user's own setting wins.
        os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
    from tui_tune.train.worker import run_worker

    return run_worker(args.run_dir, args.resume)


if __name__ == "__main__":
    raise SystemExit(main())
