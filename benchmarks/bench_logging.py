"""What a `step` event costs: the worker's report (loss sync, memory reading, JSON line to
events.jsonl) against the optimizer step it reports on, demo model, log_every_steps = 1.

Both are timed in one process on the same session, interleaved, so machine noise hits both;
the overhead is median(report) / median(step), i.e. step time with events on vs off.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Result

STEPS = 60


def demo_session(work: Path):
    from tui_tune.config.presets import builtin_dir, experiment_toml, resolve
    from tui_tune.train.demo import prepare
    from tui_tune.train.reporting import Reporter
    from tui_tune.train.setup import build_session

    demo = prepare(work / "demo")
    exp = resolve(str(builtin_dir() / "demo-tiny.toml"),
                  [f'general.backbone="{demo / "model"}"',
                   f'dataset.train_file="{demo / "data" / "train.jsonl"}"',
                   "logging.log_every_steps=1", "prediction.num_samples=0"]).experiment
    run_dir = work / "run"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text(experiment_toml(exp))
    return build_session(run_dir, resume=False, reporter=Reporter(run_dir, rank=0))


def measure(session) -> tuple[list[float], list[float]]:
    from tui_tune.train.loop import (
        Window,
        epoch_loader,
        optimizer_step,
        report_step,
    )

    session.model.train()
    collate = session.task.train_collator(session.exp, session.tokenizer)
    loader = iter(epoch_loader(session, 0, 0, collate))
    step_times, report_times = [], []
    for _ in range(STEPS):
        batch = next(loader)
        window = Window()
        start = time.perf_counter()
        loss, grad_norm = optimizer_step(session, [batch])
        loss.item()  # the step's work is done (a no-op wait on CPU, a sync on CUDA)
        step_times.append(time.perf_counter() - start)
        window.add(loss, int(batch["attention_mask"].sum()))
        session.progress.step += 1
        start = time.perf_counter()
        report_step(session, window, grad_norm)
        report_times.append(time.perf_counter() - start)
    return step_times[5:], report_times[5:]


def run() -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        session = demo_session(Path(tmp))  # its progress lines go to stderr, not the table
        steps, reports = measure(session)
        session.reporter.end("completed")
    step, report = statistics.median(steps), statistics.median(reports)
    return [Result("logging overhead, step event per step", 100 * report / step, "%", "< 1",
                   f"report {report * 1e6:.0f} us vs optimizer step {step * 1e3:.1f} ms "
                   f"(demo model, batch {session.exp.training.batch_size})")]


def run_gpu() -> list[Result]:
    return run()


if __name__ == "__main__":
    for result in run():
        print(result.row())
