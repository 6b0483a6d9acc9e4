"""The monitor's health line, one rule at a time, each with a case it must not flag."""

from __future__ import annotations

import json
import math

import pytest

from tests.tui.conftest import step_event
from tui_tune.event_writer import EventWriter
from tui_tune.tui.health import health_warnings
from tui_tune.tui.run_data import RunSeries, decode_chunk, load_run


def series_of(events) -> RunSeries:
    series = RunSeries()
    series.add(decode_chunk("".join(json.dumps(e) + "\n" for e in events).encode()))
    return series


def falling(steps: int, start: int = 1) -> list[dict]:
    """A healthy run: loss falls like 3/(1+s/25) with a little noise, grad norm 0.5-1.5."""
    return [step_event(s, 3.0 / (1 + s / 25) * (1 + 0.01 * math.sin(s)))
            for s in range(start, start + steps)]


def evals(pairs) -> list[dict]:
    return [{"v": 1, "t": 0, "kind": "eval", "step": s, "val_loss": v, "perplexity": 1.0,
             "metric": "perplexity", "metric_value": 1.0} for s, v in pairs]


def test_a_healthy_run_has_no_warnings():
    events = falling(400) + evals([(100, 1.0), (200, 0.8), (300, 0.7)])
    assert health_warnings(series_of(events)) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_loss_is_flagged_with_its_step(tmp_path, bad):
    events = falling(50)
    events.append({**step_event(51, 1.0), "loss": bad})
    with EventWriter(tmp_path / "events.jsonl") as writer:  # the real writer's encoding
        for event in events:
            writer.write("step", **{k: v for k, v in event.items() if k not in ("v", "t",
                                                                                  "kind")})
    warnings = health_warnings(load_run(tmp_path)[0])
    assert len(warnings) == 1 and "step 51" in warnings[0]
    assert str(bad) in warnings[0]


def test_a_grad_norm_spike_far_above_the_running_median_is_flagged():
    events = falling(100)
    events.append({**step_event(101, 0.5), "grad_norm": 50.0})
    warnings = health_warnings(series_of(events))
    assert any("spike 50 at step 101" in w for w in warnings)


def test_grad_norm_noise_and_a_slow_rise_are_not_spikes():
    events = falling(100)
    events.append({**step_event(101, 0.5), "grad_norm": 4.0})  # 3-4x: noise, not a spike
    assert health_warnings(series_of(events)) == []
    rising = [{**e, "grad_norm": 1.0 + e["step"] / 10} for e in falling(200)]
    assert health_warnings(series_of(rising)) == []


def test_validation_loss_rising_while_training_loss_falls_is_flagged():
    events = falling(300) + evals([(100, 1.0), (200, 1.2), (300, 1.5)])
    assert any("overfitting" in w for w in health_warnings(series_of(events)))


def test_validation_loss_rising_with_training_loss_is_not_overfitting():
    rising = [step_event(s, 1.0 + s / 100) for s in range(1, 301)]
    events = rising + evals([(100, 1.0), (200, 1.2), (300, 1.5)])
    assert not any("overfitting" in w for w in health_warnings(series_of(events)))
    wobbly = falling(300) + evals([(100, 1.0), (200, 1.2), (300, 1.1)])  # not rising twice
    assert not any("overfitting" in w for w in health_warnings(series_of(wobbly)))


def test_a_flat_loss_is_flagged_and_a_slowly_falling_one_is_not():
    flat = [step_event(s, 2.0 + 1e-4 * math.sin(s)) for s in range(1, 301)]
    assert any("flat" in w for w in health_warnings(series_of(flat)))
    slow = [step_event(s, 2.0 - s / 1000) for s in range(1, 301)]  # 0.05% a step
    assert not any("flat" in w for w in health_warnings(series_of(slow)))
    short = [step_event(s, 2.0) for s in range(1, 20)]  # too few steps to judge (issue 21:
    assert health_warnings(series_of(short)) == []  # 20 logged points are enough, not 200)


def test_divergence_is_flagged_from_the_third_logged_point_with_its_step():
    """Issue 21: lr 1.0 took the loss 6 -> 120 -> 17.5 and the health line said ok."""
    events = [step_event(s * 10, loss) for s, loss in enumerate((6.0, 120.0, 17.5), 1)]
    (warning,) = health_warnings(series_of(events))
    assert warning.startswith("diverging since step 20") and "17.5" in warning
    above_min = [step_event(s, v) for s, v in enumerate((3.0, 1.0, 0.4, 0.3, 1.5, 2.0), 1)]
    assert any(w.startswith("diverging since step 5") for w in
               health_warnings(series_of(above_min)))  # far above its running minimum
    warmup = [step_event(s, v) for s, v in enumerate((2.0, 2.4, 2.6, 2.2, 1.8), 1)]
    assert health_warnings(series_of(warmup)) == []  # a warm-up bump is no divergence


def test_health_rules_say_since_which_step_from_the_first_points():
    spike = falling(8) + [{**step_event(9, 1.0), "grad_norm": 40.0}]
    assert any("spike 40 at step 9" in w for w in health_warnings(series_of(spike)))
    nans = falling(10) + [{**step_event(s, 1.0), "loss": "nan"} for s in (11, 12, 13)]
    assert any(w == "loss is nan since step 11" for w in health_warnings(series_of(nans)))
    flat = falling(30) + [step_event(s, 1.5) for s in range(31, 55)]
    assert any(w.startswith("loss flat since step 31") for w in
               health_warnings(series_of(flat)))
    overfit = falling(400) + evals([(100, 1.0), (200, 0.9), (300, 1.2), (400, 1.5)])
    assert any(w.startswith("validation loss rising since step 200") for w in
               health_warnings(series_of(overfit)))
    stalled = series_of(falling(30))
    (warning,) = health_warnings(stalled, now=float(stalled.step_values("t")[-1]) + 3600)
    assert warning.startswith("stalled: no step for 1:00:00 since step 30")
