"""Where the loop's records go: the events file, the experiment tracker, the console line.

The loop builds each step, eval and sample record once and hands it to every sink; a sink
takes the kinds it shows and leaves the rest. Adding a destination is one class here and its
line in `sinks_for`.
"""

from __future__ import annotations

from typing import Any

STEP, EVAL, SAMPLE = "step", "eval", "sample"


class Sink:
    def write(self, kind: str, record: dict[str, Any]) -> None:
        raise NotImplementedError


class EventsSink(Sink):
    """events.jsonl, every record (rank 0 writes; the Reporter knows which rank it is)."""

    def __init__(self, reporter):
        self.reporter = reporter

    def write(self, kind: str, record: dict[str, Any]) -> None:
        self.reporter.event(kind, **record)


class TrackerSink(Sink):
    """accelerate's tracker (tensorboard, wandb, mlflow): steps and evaluations by step."""

    def __init__(self, accelerator):
        self.accelerator = accelerator

    def write(self, kind: str, record: dict[str, Any]) -> None:
        if kind == STEP:
            values = {"train/loss": record["loss"], "train/lr": record["lr"],
                      "train/tokens_per_s": record["tokens_per_s"]}
            if record.get("grad_norm") is not None:
                values["train/grad_norm"] = record["grad_norm"]
        elif kind == EVAL:
            values = {"eval/val_loss": record["val_loss"],
                      f"eval/{record['metric']}": record["metric_value"]}
        else:
            return
        self.accelerator.log(values, step=record["step"])


class ConsoleSink(Sink):
    """One line in console.log every ten log steps (the main process only)."""

    def __init__(self, steps_total: int, every: int):
        self.steps_total, self.every = steps_total, every

    def write(self, kind: str, record: dict[str, Any]) -> None:
        if kind == STEP and record["step"] % self.every == 0:
            print(f"step {record['step']}/{self.steps_total} loss {record['loss']:.4f} "
                  f"{record['tokens_per_s']:.0f} tok/s", flush=True)


def sinks_for(exp, reporter, accelerator, steps_total: int) -> list[Sink]:
    sinks: list[Sink] = [EventsSink(reporter)]
    if exp.logging.tracker != "none":
        sinks.append(TrackerSink(accelerator))
    if accelerator.is_main_process:
        sinks.append(ConsoleSink(steps_total, exp.logging.log_every_steps * 10))
    return sinks
