"""Predictions of a trained run for every row of a file: the worker's last act when
dataset.test_file is set, and `python -m tui_tune.train.predict RUN_DIR --file F --out O`, the
process `tui-tune predict` starts (through `accelerate launch` on several GPUs: each rank
predicts every world-th row, rank 0 writes).

The model is built as training built it (backbone, head from the training labels, adapter) and
final/ or a checkpoint loaded into it, the same path resume takes. The problem type says what a
prediction is (Task.predict); runs/predictions.py reads the rows and writes the file atomically.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tui_tune.runs.files import read_run_json
from tui_tune.runs.predictions import (
    PredictError,
    check_output,
    default_output,
    read_input,
    weights_folder,
    write_predictions,
)
from tui_tune.train.data import datasets_rows
from tui_tune.train.errors import UserError


class ProgressLine:
    """`predict: N/M rows` on stderr: rewritten in place on a terminal (at most 5 times a
    second), a new line at most every 10 s otherwise (console.log), and once at the end. Rank 0
    counts its own rows times the number of ranks."""

    def __init__(self, total: int, world: int = 1, stream: TextIO | None = None):
        self.total, self.world, self.done = total, world, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = 0.2 if self.tty else 10.0
        self.shown_at = 0.0

    def __call__(self, rows: int) -> None:
        self.done += rows
        if time.monotonic() - self.shown_at >= self.every_s:
            self.show()

    def show(self, last: bool = False) -> None:
        done = self.total if last else min(self.done * self.world, self.total)
        end = "\n" if last or not self.tty else ""
        self.stream.write(f"{chr(13) if self.tty else ''}predict: {done}/{self.total} rows{end}")
        self.stream.flush()
        self.shown_at = time.monotonic()


def predict_rows(task, model, tokenizer, rows: list[dict[str, Any]], exp, accelerator,
                 out: Path, force: bool, progress: ProgressLine | None = None) -> Path | None:
    """Every rank predicts its share; rank 0 writes `out` (returned; None on the others)."""
    if progress is not None and accelerator.is_main_process:
        progress.show()
    columns = task.predict(model, tokenizer, rows, accelerator, exp,
                           progress if accelerator.is_main_process else None)
    if columns is None:
        return None
    if progress is not None:
        progress.show(last=True)
    try:
        return write_predictions(rows, columns, out, force)
    except PredictError as error:
        raise UserError(str(error)) from None


def predict_test_file(session) -> None:
    """dataset.test_file at the end of a completed run: predictions.csv (.parquet) in the
    run's folder, from the model as trained. A problem is a warning: the run did complete."""
    exp, reporter = session.exp, session.reporter
    path = exp.dataset.test_file
    if not path:
        return
    out = default_output(session.run_dir, path, test_file=True)
    try:
        rows = read_input(path, exp.dataset, exp.general.problem_type, "dataset.test_file",
                          datasets_rows(path, "dataset.test_file", exp.dataset))
        written = predict_rows(session.task, session.model, session.tokenizer, rows, exp,
                               session.accelerator, out, force=True,
                               progress=ProgressLine(len(rows), session.accelerator.num_processes))
    except (PredictError, UserError) as error:
        reporter.log(f"no predictions for the test file: {error}", "warning")
        return
    if written is not None:
        reporter.log(f"predictions for {len(rows)} rows of {path} written to {written.name}")


def trained_model(exp, task, tokenizer, data, folder: Path, device):
    """The run's model with the weights of `folder` (final/ or checkpoints/step-N), built the
    way training built it, in eval mode on `device`."""
    from tui_tune.train.adapters import family_for
    from tui_tune.train.model import load_backbone

    adapter = family_for(exp.adapter.method)
    model = adapter.apply(load_backbone(exp, tokenizer, device, data), exp, task)
    adapter.load(model, folder)
    if exp.architecture.backbone_dtype not in ("int4", "int8"):  # those are placed already
        model = model.to(device)
    return model.eval()


def predict_file(run_dir: Path, file: Path, out: Path, checkpoint: str | None,
                 force: bool) -> Path | None:
    import torch
    from accelerate import Accelerator

    from tui_tune.train.model import load_tokenizer
    from tui_tune.train.setup import read_experiment
    from tui_tune.train.tasks import task_for

    exp = read_experiment(run_dir)
    folder = weights_folder(run_dir, checkpoint)
    check_output(out, force)
    rows = read_input(file, exp.dataset, exp.general.problem_type, "--file",
                      datasets_rows(str(file), "--file", exp.dataset))
    accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                              mixed_precision=exp.environment.mixed_precision)
    task = task_for(exp)
    tokenizer = load_tokenizer(exp)
    seed = int(read_run_json(run_dir).get("seed", max(exp.environment.seed, 0)))
    data = task.predict_setup(exp, tokenizer, seed)
    model = trained_model(exp, task, tokenizer, data, folder, accelerator.device)
    return predict_rows(task, model, tokenizer, rows, exp, accelerator, out, force,
                        ProgressLine(len(rows), accelerator.num_processes))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tui_tune.train.predict",
                                     description="Predict every row of a file with a run.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--checkpoint")
    parser.add_argument("--force", action="store_true")
    return parser.parse_args(argv)


def _say(line: str) -> None:
    """Once, not once per rank (every rank meets the same problem with the same file)."""
    if os.environ.get("RANK", "0") == "0":
        print(line, file=sys.stderr)


def _interrupted(signum, frame):
    raise KeyboardInterrupt  # unwinds through the writer, which removes its .partial file


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _interrupted)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    out = args.out or default_output(args.run_dir, args.file, args.checkpoint)
    try:
        written = predict_file(args.run_dir, args.file, out, args.checkpoint, args.force)
    except (PredictError, UserError) as error:
        _say(f"tui-tune: {error}")
        return 2
    except KeyboardInterrupt:
        _say("tui-tune: predict interrupted; no predictions written.")
        return 130
    if written is not None:
        print(written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
