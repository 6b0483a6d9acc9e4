"""The monitor's health line: warnings a person should act on while a run trains."""

from __future__ import annotations

import numpy as np

from tui_tune.runs.stall import WINDOW, stalled_for
from tui_tune.tui.formatting import duration
from tui_tune.tui.run_data import RunSeries

SPIKE_FACTOR = 10.0
FLAT_WINDOW = 200


def health_warnings(series: RunSeries, now: float | None = None) -> list[str]:
    """Short messages; an empty list means nothing looks wrong. `now` is given while the run
    is alive: then a run that stopped making progress is flagged as stalled."""
    warnings = [] if now is None else _stalled(series, now)
    steps, loss = series.step_values("step"), series.step_values("loss")
    warnings += _non_finite(steps, loss)
    warnings += _grad_spikes(steps, series.step_values("grad_norm"))
    warnings += _overfitting(series, steps, loss)
    warnings += _flat(loss)
    return warnings


def _stalled(series: RunSeries, now: float) -> list[str]:
    """No step (or eval) for far longer than this run's usual gap between steps."""
    times = series.step_values("t")
    start = series.last_start_t
    if start is not None:  # the pace of the current launch only (a resume starts afresh)
        times = times[times >= start]
    times = times[np.isfinite(times)][-WINDOW:]
    eval_times = series.eval_values("t")
    progress = [float(t) for t in (times[-1:].tolist() + eval_times[-1:].tolist() + [start])
                if t is not None and np.isfinite(t)]
    idle = stalled_for(times.tolist(), max(progress) if progress else None, now)
    if idle is None:
        return []
    return [f"stalled: no step for {duration(idle)} (a hung collective or dataloader?)"]


def _non_finite(steps: np.ndarray, loss: np.ndarray) -> list[str]:
    bad = np.flatnonzero(~np.isfinite(loss[-1000:]))
    if bad.size:
        offset = max(0, loss.size - 1000)
        return [f"loss is {loss[offset + bad[-1]]} at step {int(steps[offset + bad[-1]])}"]
    return []


def _grad_spikes(steps: np.ndarray, grad: np.ndarray) -> list[str]:
    """A grad norm far above the running median of the steps before it."""
    if grad.size < 20:
        return []
    history = grad[-500:-20]
    recent = grad[-20:]
    history = history[np.isfinite(history)]
    if history.size < 10:
        return []
    median = float(np.median(history))
    if median <= 0:
        return []
    peak = int(np.nanargmax(recent)) if np.isfinite(recent).any() else -1
    if peak >= 0 and recent[peak] > SPIKE_FACTOR * median:
        step = int(steps[grad.size - 20 + peak])
        return [(f"grad-norm spike {recent[peak]:.3g} at step {step} "
                f"(running median {median:.3g})")]
    return []


def _overfitting(series: RunSeries, steps: np.ndarray, loss: np.ndarray) -> list[str]:
    """Validation loss rose over the last three evaluations while training loss fell."""
    val, val_steps = series.eval_values("val_loss"), series.eval_values("step")
    if val.size < 3 or not np.all(np.diff(val[-3:]) > 0):
        return []
    lo, hi = np.searchsorted(steps, [val_steps[-3], val_steps[-1]])
    window = loss[lo:hi + 1]
    window = window[np.isfinite(window)]
    if window.size < 4:
        return []
    half = window.size // 2
    if window[half:].mean() < window[:half].mean():
        return ["validation loss rising while training loss falls (overfitting?)"]
    return []


def _flat(loss: np.ndarray) -> list[str]:
    """No visible progress: recent loss equals the loss a while ago within 0.1%."""
    if loss.size < FLAT_WINDOW:
        return []
    window = loss[-FLAT_WINDOW:]
    window = window[np.isfinite(window)]
    if window.size < FLAT_WINDOW // 2:
        return []
    quarter = window.size // 4
    first, last = window[:quarter].mean(), window[-quarter:].mean()
    scale = max(abs(first), 1e-12)
    if abs(first - last) / scale < 1e-3 and window.std() / scale < 1e-2:
        return [f"loss flat over the last {FLAT_WINDOW} logged steps"]
    return []
