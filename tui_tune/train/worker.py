"""One worker process from start to `end`: every way out writes an end status."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tui_tune.rundir import RunDir
from tui_tune.train.checkpoint import save_final_weights
from tui_tune.train.errors import UserError
from tui_tune.train.predict import predict_test_file
from tui_tune.train.reporting import Reporter, gpu_peak_gib, memory_gib
from tui_tune.train.signals import StopRequest


def quiet_libraries(run_dir: Path, rank: int) -> None:
    """Progress bars off; ranks other than 0 print nothing unless environment.log_all_ranks."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if rank != 0 and not _log_all_ranks(run_dir):
        import warnings

        warnings.filterwarnings("ignore")
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (for the process)


def _log_all_ranks(run_dir: Path) -> bool:
    from tui_tune.train.setup import read_experiment

    try:
        return read_experiment(run_dir).environment.log_all_ranks
    except UserError:
        return True  # the error will be reported; let every rank say what it saw


def save_final(session) -> Path:
    """final/: the model (or adapter) and what the problem type adds (its tokenizer...),
    loadable with transformers / peft."""
    folder = RunDir(session.run_dir).final
    acc = session.accelerator
    acc.wait_for_everyone()
    save_final_weights(acc, session.model, folder, session.adapter)
    if acc.is_main_process:
        session.task.write_final(session.tokenizer, session.exp, folder)
    acc.wait_for_everyone()
    return folder


def run_worker(run_dir: Path, resume: bool) -> int:
    import torch

    stop = StopRequest().install()
    reporter = Reporter(run_dir)
    reporter.write_rank_file()
    session = None
    try:
        quiet_libraries(Path(run_dir), reporter.rank)
        from tui_tune.train.loop import ORPHANED, train
        from tui_tune.train.setup import build_session, start_event

        session = build_session(Path(run_dir), resume, reporter)
        start_event(session)
        status = train(session, stop)
        if status == ORPHANED:
            print(f"the run directory {run_dir} was deleted: training ends here, unsaved",
                  file=sys.stderr, flush=True)
            return 0
        final = save_final(session) if status == "completed" else None
        if final is not None:
            predict_test_file(session)
        if session.exp.logging.tracker != "none":
            session.accelerator.end_training()
        best = session.progress.best_step
        reporter.end(status, step=session.progress.step, final=str(final) if final else None,
                     best_val_loss=session.progress.best_val_loss,
                     best_checkpoint=str(RunDir(session.run_dir).checkpoint(best))
                     if best is not None else None,
                     mem_peak_gib=gpu_peak_gib(session.accelerator.device))
        return 0
    except UserError as error:
        reporter.end("failed", error_type="UserError", message=str(error), phase=reporter.phase,
                     setting=error.setting, file=error.file)
        print(f"error: {error}", file=sys.stderr)
        return 1
    except torch.OutOfMemoryError as error:
        device = session.accelerator.device if session else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        reporter.fail(error, status="oom", **memory_gib(device))
        raise
    except BaseException as error:
        reporter.fail(error)
        raise
