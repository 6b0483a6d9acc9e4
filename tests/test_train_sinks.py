"""The loop's records reach every sink the settings ask for, each in its own form; the logged
lr is the optimizer's own."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tui_tune.train.loop import base_lr
from tui_tune.train.sinks import ConsoleSink, EventsSink, TrackerSink, sinks_for

STEP = {"step": 20, "loss": 1.23456, "lr": 0.001, "grad_norm": None, "tokens_per_s": 987.6}
EVAL = {"step": 20, "val_loss": 2.0, "perplexity": 7.39, "metric": "bleu", "metric_value": 31.5}


class Recorder:
    def __init__(self):
        self.calls = []

    def event(self, kind, **fields):
        self.calls.append((kind, fields))

    def log(self, values, step):
        self.calls.append((values, step))


def settings(tracker: str = "none", every: int = 2):
    return SimpleNamespace(logging=SimpleNamespace(tracker=tracker, log_every_steps=every))


def test_sinks_follow_the_tracker_setting_and_the_main_process():
    main = SimpleNamespace(is_main_process=True)
    kinds = [type(s) for s in sinks_for(settings("tensorboard"), Recorder(), main, 100)]
    assert kinds == [EventsSink, TrackerSink, ConsoleSink]
    other = SimpleNamespace(is_main_process=False)
    assert [type(s) for s in sinks_for(settings(), Recorder(), other, 100)] == [EventsSink]


def test_the_events_sink_writes_every_record_as_it_is():
    reporter = Recorder()
    sink = EventsSink(reporter)
    for kind, record in (("step", STEP), ("eval", EVAL), ("sample", {"step": 20, "prompt": "p"})):
        sink.write(kind, record)
    assert reporter.calls == [("step", STEP), ("eval", EVAL), ("sample", {"step": 20,
                                                                         "prompt": "p"})]


def test_the_tracker_gets_steps_and_the_chosen_metric_not_samples():
    accelerator = Recorder()
    sink = TrackerSink(accelerator)
    sink.write("step", STEP)
    sink.write("step", {**STEP, "step": 21, "grad_norm": 0.5})
    sink.write("eval", EVAL)
    sink.write("sample", {"step": 20, "prompt": "p"})
    assert accelerator.calls == [
        ({"train/loss": 1.23456, "train/lr": 0.001, "train/tokens_per_s": 987.6}, 20),
        ({"train/loss": 1.23456, "train/lr": 0.001, "train/tokens_per_s": 987.6,
          "train/grad_norm": 0.5}, 21),
        ({"eval/val_loss": 2.0, "eval/bleu": 31.5}, 20)]


def test_the_console_line_comes_every_tenth_log_step(capsys):
    sink = ConsoleSink(steps_total=100, every=20)
    sink.write("step", STEP)
    sink.write("step", {**STEP, "step": 30})
    sink.write("eval", EVAL)
    assert capsys.readouterr().out == "step 20/100 loss 1.2346 988 tok/s\n"


@pytest.mark.parametrize("differential, expected", [
    ({"head": 0.01}, 0.001 * 0.5),  # the main group is found whatever comes first
    ({"": 0.01}, 0.001 * 0.5),  # every weight differential: training.lr times the factor
])
def test_the_logged_lr_is_the_main_groups_in_the_optimizer(differential, expected):
    from tui_tune.train.optim import make_optimizer

    model = torch.nn.Sequential()
    model.add_module("head", torch.nn.Linear(2, 2))
    model.add_module("body", torch.nn.Linear(2, 2))
    training = SimpleNamespace(lr=0.001, differential_lr=differential, weight_decay=0.0,
                               optimizer="sgd", momentum=0.0, betas=(0.9, 0.999))
    optimizer = make_optimizer(model, training, on_cuda=False)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5)  # the head's
    session = SimpleNamespace(optimizer=optimizer, scheduler=scheduler,
                              exp=SimpleNamespace(training=training))
    assert base_lr(session) == pytest.approx(expected)
